// The credentials of the process at the other end of a connected Unix
// socket, as the kernel recorded them (at connect(), or at the server's
// listen()): what the message endpoint believes of its peers, and what a
// sender believes of the endpoint. Never what a peer claims about itself.
//
// Linux (the portable build too: SO_PEERCRED is the kernel's own answer
// there): SO_PEERCRED gives pid and uid. macOS: getpeereid and
// LOCAL_PEERPID. FreeBSD: LOCAL_PEERCRED (cr_pid since 13). Elsewhere
// getpeereid gives the uid, and the pid is -1: src/ then refuses to pass a
// message on without one.
#include <errno.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include "common.h"
#if defined(__APPLE__) || defined(__FreeBSD__)
#include <sys/ucred.h>
#endif

namespace instance_lock {

namespace {

// peerCred(fd) -> [pid (-1: unknown), uid]
Napi::Value PeerCred(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsFd(info[0])) return ThrowType(env, "peerCred(fd)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  double pid = -1;
  double uid = -1;
#if defined(__linux__)
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    ThrowSystemError(env, errno, "getsockopt", "");
    return env.Undefined();
  }
  pid = cred.pid;
  uid = cred.uid;
#elif defined(__FreeBSD__)
  struct xucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERCRED, &cred, &len) != 0) {
    ThrowSystemError(env, errno, "getsockopt", "");
    return env.Undefined();
  }
  uid = cred.cr_uid;
#if __FreeBSD_version >= 1300000
  pid = cred.cr_pid;
#endif
#else
  uid_t euid;
  gid_t egid;
  if (getpeereid(fd, &euid, &egid) != 0) {
    ThrowSystemError(env, errno, "getpeereid", "");
    return env.Undefined();
  }
  uid = euid;
#if defined(__APPLE__)
  pid_t p;
  socklen_t len = sizeof p;
  if (getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, &p, &len) == 0) pid = p;
#endif
#endif
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, pid));
  out.Set(1u, Napi::Number::New(env, uid));
  return out;
}

}  // namespace

void RegisterPeer(Napi::Env env, Napi::Object exports) {
  exports.Set("peerCred", Napi::Function::New(env, PeerCred, "peerCred"));
}

}  // namespace instance_lock
