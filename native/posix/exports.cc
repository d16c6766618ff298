// The functions src/ calls (see src/backends/addon.ts for their shapes), and
// Register, which installs them.
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#if defined(__linux__)
#include <sys/syscall.h>
#include <sys/vfs.h>
#else
#include <pthread.h>
#include <sys/mount.h>
#include <sys/param.h>
#endif
#if defined(__FreeBSD__)
#include <pthread_np.h>
#endif

#include "common.h"
#include "env.h"
#include "lockfile.h"
#include "record.h"
#if IL_LINUX
#include "wait.h"
#endif

#if defined(__linux__) && !IL_LINUX
int InstanceLockBsdGetLk(int fd, struct flock* fl);
#endif

namespace instance_lock {

const char* const kPlatform = "posix";

namespace {

// open(dirfd, name, mode, checks) -> [fd, writable]
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsDirFd(info[0]) || !info[1].IsString() || !IsMode(info[2]) || !IsChecks(info[3]))
    return ThrowType(env, "open(dirfd, name: string, mode, checks)");
  int dirfd = info[0].As<Napi::Number>().Int32Value();
  Utf8Arg name(env, info[1]);
  if (!name.ok()) return env.Undefined();
  mode_t mode = info[2].As<Napi::Number>().Uint32Value();
  int checks = info[3].As<Napi::Number>().Int32Value();
  OpenResult r = OpenLockFile(dirfd, name.c_str(), mode, checks);
  if (r.fd < 0) {
    ThrowSystemError(env, r.err, r.syscall, name.str());
    return env.Undefined();
  }
  Track(EnvOf(env), r.fd);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, r.fd));
  out.Set(1u, Napi::Boolean::New(env, r.writable));
  return out;
}

// lock(fd, dirfd, name, writable, mode, checks, record|null) ->
// 0 acquired | 1 held | 2 stale (the descriptor no longer names the file:
// reopen). On 0 the file has been checked as by open(), the record has been
// written when `record` is a string and `writable`, and then the inspection
// indicator set.
Napi::Value Lock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsFd(info[0]) || !IsDirFd(info[1]) || !info[2].IsString() || !info[3].IsBoolean() || !IsMode(info[4]) ||
      !IsChecks(info[5]) || !IsStringOrNull(info[6]))
    return ThrowType(env, "lock(fd, dirfd, name: string, writable: boolean, mode, checks, record: string|null)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  int dirfd = info[1].As<Napi::Number>().Int32Value();
  Utf8Arg name(env, info[2]);
  if (!name.ok()) return env.Undefined();
  bool writable = info[3].As<Napi::Boolean>();
  mode_t mode = info[4].As<Napi::Number>().Uint32Value();
  int checks = info[5].As<Napi::Number>().Int32Value();
  int err = 0;
  const char* syscall = "flock";
  int state = LockFd(fd, dirfd, name.c_str(), mode, checks, &err, &syscall);
  if (state < 0) {
    ThrowSystemError(env, err, syscall, name.str());
    return env.Undefined();
  }
  if (state == kAcquired) {
    if (writable && info[6].IsString()) {
      Utf8Arg record(env, info[6], kHeaderLen);
      if (record.ok()) WriteRecord(fd, record);
    }
    SetIndicator(fd, writable);
  }
  return Napi::Number::New(env, state);
}

// acquire(dirfd, name, mode, checks, record, keep, spare, spareWritable) ->
// fd | ~fd (acquired; ~fd: a read-only descriptor) | held: the holder's
// record (string|null), or with `keep` the open descriptor to wait on,
// [fd, writable] — open + lock + write in one call, the tryLock fast path.
// `spare` (or -1): a descriptor of this lock file that this process
// released a moment ago, tried instead of opening the file again; acquire
// owns it from here on. Identity changes between open and flock are retried
// here.
Napi::Value Acquire(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t dirfd, mode, checks, spare;
  bool keep, spare_writable;
  bool has_record = info[4].IsString();
  if (!GetInteger(env, info[0], AT_FDCWD, INT32_MAX, &dirfd) || (dirfd < 0 && dirfd != AT_FDCWD) ||
      !info[1].IsString() || !GetInteger(env, info[2], 0, 07777, &mode) ||
      !GetInteger(env, info[3], 0, kCheckMode | kCheckName | kCheckOwner, &checks) ||
      !(has_record || info[4].IsNull()) || !GetBool(env, info[5], &keep) ||
      !GetInteger(env, info[6], -1, INT32_MAX, &spare) || !GetBool(env, info[7], &spare_writable))
    return ThrowType(env,
                     "acquire(dirfd, name: string, mode, checks, record: string|null, keep: boolean, spare: fd|-1, "
                     "spareWritable: boolean)");
  Env* home = EnvOf(env);
  Utf8Arg name(env, info[1]);
  if (!name.ok()) return env.Undefined();
  for (int attempt = 0; attempt < 64; attempt++) {
    // A failed try is open, flock, read the record, close: what the file is
    // matters only once it is ours to write to, so it is checked after the
    // flock. A planted non-file held by someone reads as held, no record.
    OpenResult r;
    bool reused = spare >= 0;
    if (reused) {
      r.fd = static_cast<int>(spare);
      r.writable = spare_writable;
      spare = -1;
    } else {
      r = OpenLockFileUnchecked(static_cast<int>(dirfd), name.c_str(), static_cast<mode_t>(mode));
    }
    if (r.fd < 0) {
      ThrowSystemError(env, r.err, r.syscall, name.str());
      return env.Undefined();
    }
    int err = 0;
    const char* syscall = "flock";
    int state = LockFd(r.fd, static_cast<int>(dirfd), name.c_str(), static_cast<mode_t>(mode), static_cast<int>(checks),
                       &err, &syscall);
    if (state == kHeld) {
      if (keep) {
        // A waiter re-checks its descriptor after its flock and every 250 ms.
        Track(home, r.fd);
        Napi::Array out = Napi::Array::New(env, 2);
        out.Set(0u, Napi::Number::New(env, r.fd));
        out.Set(1u, Napi::Boolean::New(env, r.writable));
        return out;
      }
      // A kept descriptor may have outlived its file: then the holder of
      // the orphan is nobody's business, and the file at the path is tried.
      if (reused && Orphaned(r.fd, static_cast<int>(dirfd), name.c_str(), static_cast<int>(checks))) {
        Untrack(home, r.fd);
        close(r.fd);
        continue;
      }
      Napi::Value record = RecordOrNull(env, r.fd);
      Untrack(home, r.fd);
      close(r.fd);
      return record;
    }
    if (state == kAcquired) {
      if (r.writable && has_record) {
        // Read only now: a failed try never converts the record.
        Utf8Arg record(env, info[4], kHeaderLen);
        if (record.ok()) WriteRecord(r.fd, record);
      }
      SetIndicator(r.fd, r.writable);
      Track(home, r.fd);
      return Napi::Number::New(env, r.writable ? r.fd : ~r.fd);
    }
    Untrack(home, r.fd);
    close(r.fd);
    if (state < 0) {
      ThrowSystemError(env, err, syscall, name.str());
      return env.Undefined();
    }
  }
  ThrowSystemError(env, EAGAIN, "flock", name.str());
  return env.Undefined();
}

#if !IL_LINUX || !defined(F_OFD_GETLK)
// F_GETLK. Linux keeps flock locks apart from fcntl ones, so there its
// F_GETLK never reports a flock: the portable build gets F_GETLK as the BSDs
// answer it from the conformance tests (test/conformance/bsd-getlk.cc).
int GetLk(int fd, struct flock* fl) {
#if defined(__linux__) && !IL_LINUX
  return InstanceLockBsdGetLk(fd, fl);
#else
  return fcntl(fd, F_GETLK, fl);
#endif
}
#endif

// probe(path) -> null (no file) | [held, record|null, dev, ino]
// Takes no lock of any kind, so it can never make a concurrent acquire fail.
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) return ThrowType(env, "probe(path: string)");
  std::string path = info[0].As<Napi::String>();
  int fd = OpenRetry(AT_FDCWD, path.c_str(), O_RDONLY | kOpenFlags, 0);
  if (fd < 0) {
    if (errno == ENOENT) return env.Null();
    ThrowSystemError(env, errno, "open", path);
    return env.Undefined();
  }
  FileId st;
  if (IdentityOfFd(fd, &st) != 0 || !S_ISREG(st.mode)) {
    int err = IdentityOfFd(fd, &st) != 0 ? errno : S_ISDIR(st.mode) ? EISDIR : EINVAL;
    close(fd);
    ThrowSystemError(env, err, "open", path);
    return env.Undefined();
  }
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
#if IL_LINUX && defined(F_OFD_GETLK)
  int r = fcntl(fd, F_OFD_GETLK, &fl);
#else
  // The BSDs and macOS keep flock and fcntl locks in one table, so F_GETLK
  // reports a flock holder without taking anything.
  int r = GetLk(fd, &fl);
#endif
  if (r != 0) {
    int err = errno;
    close(fd);
    ThrowSystemError(env, err, "fcntl", path);
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env, 4);
  out.Set(0u, Napi::Boolean::New(env, fl.l_type != F_UNLCK));
  out.Set(1u, RecordOrNull(env, fd));
  out.Set(2u, Napi::Number::New(env, static_cast<double>(st.dev)));
  out.Set(3u, Napi::Number::New(env, static_cast<double>(st.ino)));
  close(fd);
  return out;
}

// readRecord(fd) -> string|null
Napi::Value ReadRecordJs(const Napi::CallbackInfo& info) {
  if (!IsFd(info[0])) return ThrowType(info.Env(), "readRecord(fd)");
  return RecordOrNull(info.Env(), info[0].As<Napi::Number>().Int32Value());
}

// writeRecord(fd, json): throws on failure (e.g. EBADF on a read-only fd).
Napi::Value WriteRecordJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsFd(info[0]) || !info[1].IsString()) return ThrowType(env, "writeRecord(fd, json: string)");
  Utf8Arg record(env, info[1], kHeaderLen);
  if (!record.ok()) return env.Undefined();
  int err = WriteRecord(info[0].As<Napi::Number>().Int32Value(), record);
  if (err != 0) ThrowSystemError(env, err, "write", "");
  return env.Undefined();
}

// flock(fd, shared, nonblocking) -> true acquired / false would block
Napi::Value FlockJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsFd(info[0]) || !info[1].IsBoolean() || !info[2].IsBoolean())
    return ThrowType(env, "flock(fd, shared: boolean, nonblocking: boolean)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  int op = info[1].As<Napi::Boolean>() ? LOCK_SH : LOCK_EX;
  if (info[2].As<Napi::Boolean>()) op |= LOCK_NB;
  if (FlockRetry(fd, op) != 0) {
    if (errno == EWOULDBLOCK || errno == EAGAIN) return Napi::Boolean::New(env, false);
    ThrowSystemError(env, errno, "flock", "");
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

// close() is not retried on EINTR: on Linux the descriptor is gone anyway.
void CloseFd(int fd) { close(fd); }

// release(fd) and close(fd): lets go of the descriptor with `let_go`, and
// of this environment's claim on it.
Napi::Value LetGo(const Napi::CallbackInfo& info, const char* signature, void (*let_go)(int)) {
  Napi::Env env = info.Env();
  int fd;
  if (!GetFd(env, info[0], &fd)) return ThrowType(env, signature);
  let_go(fd);
  Untrack(EnvOf(env), fd);
  return env.Undefined();
}

// release(fd): see ReleaseFd.
Napi::Value Release(const Napi::CallbackInfo& info) { return LetGo(info, "release(fd)", ReleaseFd); }

Napi::Value Close(const Napi::CallbackInfo& info) { return LetGo(info, "close(fd)", CloseFd); }

// unlock(fd): ReleaseFd without the close; src/ may take the lock again on
// the same descriptor (acquire's `spare`).
Napi::Value Unlock(const Napi::CallbackInfo& info) {
  int fd;
  if (!GetFd(info.Env(), info[0], &fd)) return ThrowType(info.Env(), "unlock(fd)");
  UnlockFd(fd);
  return info.Env().Undefined();
}

// openDir(path) -> fd of the directory, opened without following a symlink
// at `path` itself; closed with close(), and with the environment.
Napi::Value OpenDir(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) return ThrowType(env, "openDir(path: string)");
  std::string path = info[0].As<Napi::String>();
  int fd = OpenRetry(AT_FDCWD, path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
  if (fd < 0) {
    ThrowSystemError(env, errno, "open", path);
    return env.Undefined();
  }
  Track(EnvOf(env), fd);
  return Napi::Number::New(env, fd);
}

// hostname() -> gethostname(), as os.hostname() gives it, or undefined. The
// guard's record needs it, and loading node:os costs a tenth of its start.
Napi::Value Hostname(const Napi::CallbackInfo& info) {
  char name[256 + 1];
  if (gethostname(name, sizeof name - 1) != 0) return info.Env().Undefined();
  name[sizeof name - 1] = '\0';
  return Napi::String::New(info.Env(), name);
}

// Whether the calling thread is the process's first one, where Node runs its
// main thread (never a Worker's). Unknown elsewhere: false.
static bool OnInitialThread() {
#if IL_LINUX
  return syscall(SYS_gettid) == getpid();
#elif defined(__APPLE__) || defined(__FreeBSD__)
  return pthread_main_np() == 1;
#else
  return false;
#endif
}

// fsType(path) -> statfs magic number (Linux) or type name (BSD, macOS).
Napi::Value FsType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) return ThrowType(env, "fsType(path: string)");
  std::string path = info[0].As<Napi::String>();
  struct statfs sf;
  if (statfs(path.c_str(), &sf) != 0) {
    ThrowSystemError(env, errno, "statfs", path);
    return env.Undefined();
  }
#if IL_LINUX
  return Napi::Number::New(env, static_cast<double>(static_cast<uint32_t>(sf.f_type)));
#elif defined(__linux__)
  // The portable build: Linux has no type names, and a name is what src/
  // gets elsewhere. The magic number as text names no file system src/ knows.
  char name[16];
  snprintf(name, sizeof name, "0x%x", static_cast<unsigned>(sf.f_type));
  return Napi::String::New(env, name);
#else
  return Napi::String::New(env, sf.f_fstypename);
#endif
}

// sameFile(fd, dirfd, name) -> whether `name` in `dirfd` is still the file
// open as `fd` (a waiter's check that it waits on the lock file itself).
Napi::Value SameFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!IsFd(info[0]) || !IsDirFd(info[1]) || !info[2].IsString())
    return ThrowType(env, "sameFile(fd, dirfd, name: string)");
  Utf8Arg name(env, info[2]);
  if (!name.ok()) return env.Undefined();
  bool same = !Orphaned(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(), name.c_str(),
                        kCheckName);
  return Napi::Boolean::New(env, same);
}

}  // namespace

void Register(Napi::Env env, Napi::Object exports) {
  auto* home = new Env();
  napi_set_instance_data(env, home, nullptr, nullptr);
  napi_add_async_cleanup_hook(env, EndEnvironment, home, nullptr);
  exports.Set("AT_FDCWD", Napi::Number::New(env, AT_FDCWD));
  exports.Set("CHECK_MODE", Napi::Number::New(env, kCheckMode));
  exports.Set("CHECK_NAME", Napi::Number::New(env, kCheckName));
  exports.Set("CHECK_OWNER", Napi::Number::New(env, kCheckOwner));
  // Whether src/ can prove from /proc which process holds a flock (Linux).
  exports.Set("PROVES_HOLDERS", Napi::Boolean::New(env, IL_LINUX == 1));
  // Registered once per Node environment, on its own thread.
  exports.Set("INITIAL_THREAD", Napi::Boolean::New(env, OnInitialThread()));
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("lock", Napi::Function::New(env, Lock, "lock"));
  exports.Set("acquire", Napi::Function::New(env, Acquire, "acquire"));
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("readRecord", Napi::Function::New(env, ReadRecordJs, "readRecord"));
  exports.Set("writeRecord", Napi::Function::New(env, WriteRecordJs, "writeRecord"));
  exports.Set("flock", Napi::Function::New(env, FlockJs, "flock"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("openDir", Napi::Function::New(env, OpenDir, "openDir"));
  exports.Set("release", Napi::Function::New(env, Release, "release"));
  exports.Set("unlock", Napi::Function::New(env, Unlock, "unlock"));
  exports.Set("fsType", Napi::Function::New(env, FsType, "fsType"));
  exports.Set("hostname", Napi::Function::New(env, Hostname, "hostname"));
  exports.Set("sameFile", Napi::Function::New(env, SameFile, "sameFile"));
#if IL_LINUX
  RegisterWaits(env, exports);
#endif
  RegisterPeer(env, exports);
}

}  // namespace instance_lock
