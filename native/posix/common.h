#ifndef INSTANCE_LOCK_POSIX_COMMON_H_
#define INSTANCE_LOCK_POSIX_COMMON_H_

// Unix primitives: open a lock file safely, flock it, re-check its identity,
// read/write the holder record, probe without taking anything, and wait for
// a lock on a thread of our own (Linux; never the libuv pool).
//
// Every call takes plain values and either returns a plain value or throws an
// Error carrying errno/syscall/path; src/ decides what any of it means.
//
// By concern: lockfile.cc (open, checks, flock, verify, the indicator),
// record.cc (the holder record), wait.cc (waiting threads, Linux), env.cc
// (each environment's descriptors, and its end), process.cc (pidfds, Linux),
// peer.cc (a connected socket's peer credentials, for messages),
// exports.cc (the functions src/ calls, their argument checks, Register).
#include <fcntl.h>
#include <napi.h>

#include <cstddef>
#include <string>

#include "../args.h"
#include "../platform.h"
#include "lockfile.h"

// The Linux-only paths (statx, the OFD inspection indicator, waiting threads,
// gettid, statfs magic numbers, holders proven from /proc). A build with
// INSTANCE_LOCK_PORTABLE leaves them all out, on Linux too, and takes the
// paths macOS and the BSDs take, so that test/conformance can run those on
// Linux (scripts/build-portable.mjs).
#if defined(__linux__) && !defined(INSTANCE_LOCK_PORTABLE)
#define IL_LINUX 1
#else
#define IL_LINUX 0
#endif

namespace instance_lock {

// The arguments the Unix functions share, besides args.h's: a directory
// descriptor (or AT_FDCWD), a lock file's mode, and a mask of kCheck bits.
inline bool IsDirFd(const Napi::Value& v) { return IsFd(v) || IsInteger(v, AT_FDCWD, AT_FDCWD); }
inline bool IsMode(const Napi::Value& v) { return IsInteger(v, 0, 07777); }
inline bool IsChecks(const Napi::Value& v) { return IsInteger(v, 0, kCheckMode | kCheckName | kCheckOwner); }

// A JS string as NUL-terminated UTF-8, with `head` free bytes in front of
// it (room for the record header, so the record is written from one buffer).
// One pass when it fits on the stack; node-addon-api's std::string
// conversion measures the UTF-8 length first, then copies into the heap,
// and on the acquire path those two passes over the record showed in
// profiles.
class Utf8Arg {
 public:
  Utf8Arg(napi_env env, napi_value v, size_t head = 0) : head_(head) {
    // A UTF-16 code unit is at most 3 bytes of UTF-8, so the JS length
    // (an O(1) query) tells whether the stack buffer surely holds it. N-API
    // truncates at a character boundary, so a cut-short copy cannot be told
    // from a whole one by its length afterwards.
    size_t units = 0;
    if (napi_get_value_string_utf16(env, v, nullptr, 0, &units) != napi_ok) {
      Napi::TypeError::New(env, "expected a string").ThrowAsJavaScriptException();
      return;
    }
    size_t room = sizeof stack_ - head;
    if (units * 3 < room) {
      napi_get_value_string_utf8(env, v, stack_ + head, room, &len_);
      data_ = stack_;
    } else {
      napi_get_value_string_utf8(env, v, nullptr, 0, &len_);
      heap_.resize(head + len_ + 1);
      napi_get_value_string_utf8(env, v, &heap_[head], len_ + 1, &len_);
      data_ = &heap_[0];
    }
    ok_ = true;
  }
  Utf8Arg(const Utf8Arg&) = delete;
  Utf8Arg& operator=(const Utf8Arg&) = delete;

  bool ok() const { return ok_; }
  const char* c_str() const { return data_ + head_; }
  size_t size() const { return len_; }
  // The buffer from the start of the free head room.
  char* base() { return data_; }
  std::string str() const { return std::string(c_str(), len_); }

 private:
  char stack_[2048];
  std::string heap_;
  char* data_ = stack_;
  size_t head_;
  size_t len_ = 0;
  bool ok_ = false;
};

// peerCred, for the message endpoint (peer.cc).
void RegisterPeer(Napi::Env env, Napi::Object exports);

}  // namespace instance_lock

#endif
