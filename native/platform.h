#ifndef INSTANCE_LOCK_PLATFORM_H_
#define INSTANCE_LOCK_PLATFORM_H_

#include <napi.h>

namespace instance_lock {

// "posix" or "win32": which set of primitives Register() installs.
extern const char* const kPlatform;

void Register(Napi::Env env, Napi::Object exports);

#if !defined(_WIN32)
// Signalling a process through a pidfd where the system has one
// (native/posix/process.cc).
void RegisterProcess(Napi::Env env, Napi::Object exports);
#endif

// Throws a JS Error for the OS error `err` in `syscall`. Unix: shaped as fs
// shapes its errors (code, negative errno, syscall, libuv's message), with
// `path` left to src/ (fromNative in src/core/errors.ts). Windows: the Win32
// number as `errno`, which src/backends/win32-mutex/index.ts maps to a code.
void ThrowSystemError(Napi::Env env, int err, const char* syscall, const std::string& path);

// SHA-256 of the bytes, as 64 lowercase hex digits (native/sha256.cc).
std::string Sha256Hex(const std::string& data);

}  // namespace instance_lock

#endif
