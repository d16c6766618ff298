// Signalling a process through a pidfd (Linux >= 5.3). A pidfd refers to one
// process for as long as it is open, never to a later one that is given the
// same pid, so a holder verified after its pidfd was opened is the process a
// signal sent through it reaches. Elsewhere (and in the portable build, see
// native/posix/common.h) nothing is registered, and src/ signals by pid.
//
// Every call takes plain values and either returns a plain value or throws an
// Error carrying errno/syscall; src/ decides what any of it means.
#include <napi.h>

#include "../args.h"
#include "../platform.h"

#if defined(__linux__) && !defined(INSTANCE_LOCK_PORTABLE)
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

// C libraries older than the kernel call lack the names; the numbers are the
// same on every architecture the package is built for.
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#endif

namespace instance_lock {

namespace {

#if defined(__linux__) && !defined(INSTANCE_LOCK_PORTABLE)
// pidfdOpen(pid) -> a pidfd, close-on-exec (pidfd_open sets it). ESRCH: no
// process has that pid; ENOSYS: the kernel (or a seccomp filter) lacks it.
Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
  if (!IsInteger(info[0], 1, INT32_MAX)) return ThrowType(info.Env(), "pidfdOpen(pid > 0)");
  const pid_t pid = info[0].As<Napi::Number>().Int32Value();
  const long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) {
    ThrowSystemError(info.Env(), errno, "pidfd_open", "");
    return Napi::Value();
  }
  return Napi::Number::New(info.Env(), static_cast<double>(fd));
}

// pidfdSignal(pidfd, signalNumber). ESRCH: the process has exited, whatever
// now has its pid.
Napi::Value PidfdSignal(const Napi::CallbackInfo& info) {
  if (!IsFd(info[0]) || !IsInteger(info[1], 0, INT32_MAX)) return ThrowType(info.Env(), "pidfdSignal(pidfd, signal)");
  const int fd = info[0].As<Napi::Number>().Int32Value();
  const int sig = info[1].As<Napi::Number>().Int32Value();
  if (syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0) != 0) {
    ThrowSystemError(info.Env(), errno, "pidfd_send_signal", "");
  }
  return info.Env().Undefined();
}
#endif

}  // namespace

void RegisterProcess(Napi::Env env, Napi::Object exports) {
#if defined(__linux__) && !defined(INSTANCE_LOCK_PORTABLE)
  exports.Set("pidfdOpen", Napi::Function::New(env, PidfdOpen, "pidfdOpen"));
  exports.Set("pidfdSignal", Napi::Function::New(env, PidfdSignal, "pidfdSignal"));
#else
  (void)env;
  (void)exports;
#endif
}

}  // namespace instance_lock
