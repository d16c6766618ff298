// Entry point: each platform file registers its primitives on `exports`.
// Everything the addon exports is a small primitive; policy lives in src/.
#include <napi.h>

#include "args.h"
#include "platform.h"

#if !defined(_WIN32)
#include <uv.h>
#endif

namespace instance_lock {

#if defined(_WIN32)
// Win32 error numbers: src/backends/win32-mutex/index.ts maps them to Node's codes (the addon is
// linked against Node-API alone there, which has no libuv to ask).
void ThrowSystemError(Napi::Env env, int err, const char* syscall, const std::string& path) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + " failed");
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  e.ThrowAsJavaScriptException();
}
#else
// Shaped as fs shapes its errors, from the table fs itself uses (libuv's):
// "EMFILE: too many open files, fcntl", code, negative errno, syscall. No
// `path`: the addon mostly sees names relative to a directory descriptor,
// and src/ (fromNative in src/core/errors.ts) adds the full path of the lock
// file or directory concerned.
void ThrowSystemError(Napi::Env env, int err, const char* syscall, const std::string& /* path */) {
  int uverr = uv_translate_sys_error(err);
  const char* code = uv_err_name(uverr);
  Napi::Error e = Napi::Error::New(env, std::string(code) + ": " + uv_strerror(uverr) + ", " + syscall);
  e.Set("code", Napi::String::New(env, code));
  e.Set("errno", Napi::Number::New(env, uverr));
  e.Set("syscall", Napi::String::New(env, syscall));
  e.ThrowAsJavaScriptException();
}
#endif

}  // namespace instance_lock

// sha256(text) -> hex digest of its UTF-8 bytes, as node:crypto's
// createHash('sha256').update(text).digest('hex').
static Napi::Value Sha256(const Napi::CallbackInfo& info) {
  if (!info[0].IsString()) return instance_lock::ThrowType(info.Env(), "sha256(text: string)");
  return Napi::String::New(info.Env(), instance_lock::Sha256Hex(info[0].As<Napi::String>()));
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("platform", Napi::String::New(env, instance_lock::kPlatform));
  exports.Set("sha256", Napi::Function::New(env, Sha256, "sha256"));
  instance_lock::Register(env, exports);
#if !defined(_WIN32)
  instance_lock::RegisterProcess(env, exports);
#endif
  return exports;
}

NODE_API_MODULE(instance_lock, Init)
