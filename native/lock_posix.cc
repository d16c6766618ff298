// Unix primitives: open a lock file safely, flock it, re-check its identity,
// read/write the holder record, probe without taking anything, and watch lock
// files for release (Linux inotify on the libuv loop: no thread, no pool).
//
// Every call takes plain values and either returns a plain value or throws an
// Error carrying errno/syscall/path; src/ decides what any of it means.
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include <napi.h>
#include <uv.h>

#if defined(__linux__)
#include <sys/inotify.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#else
#include <sys/mount.h>
#include <sys/param.h>
#endif

#include "platform.h"

namespace instance_lock {

const char* const kPlatform = "posix";

namespace {

// O_NOFOLLOW: a symlink planted at the lock path is never followed.
// O_CLOEXEC: a child process never inherits the lock by accident.
// O_NONBLOCK: a FIFO planted at the lock path cannot make open() hang.
constexpr int kOpenFlags = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;

// Holder record: "IL1 <len:8 hex> <fnv1a32:8 hex>\n<json>". It is written at
// offset 0 and never truncated (truncating to 0 and rewriting makes ext4
// flush on close, ~60x the cost of the lock itself); bytes past `len` are
// leftovers of a longer earlier record. The checksum lets a reader that
// races the holder's write reject a torn record instead of believing it.
constexpr size_t kHeaderLen = 22;
constexpr size_t kMaxRecord = 64 * 1024;

uint32_t Fnv1a(const char* p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= static_cast<unsigned char>(p[i]);
    h *= 16777619u;
  }
  return h;
}

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

int OpenRetry(int dirfd, const char* name, int flags, mode_t mode) {
  int fd;
  do fd = openat(dirfd, name, flags, mode);
  while (fd < 0 && errno == EINTR);
  return fd;
}

int FlockRetry(int fd, int op) {
  int r;
  do r = flock(fd, op);
  while (r < 0 && errno == EINTR);
  return r;
}

// What the protocol needs to know of a file: which one it is, its type, its
// links, its owner and mode.
struct FileId {
  dev_t dev;
  ino_t ino;
  mode_t mode;
  nlink_t nlink;
  uid_t uid;
};

// stat without timestamps. On kernels with multigrain timestamps (Linux
// 6.13+) a stat that reports ctime/mtime makes the next write take a
// fine-grained timestamp and dirty the inode, which made writing the holder
// record right after our checks ~2x slower; statx can leave them out.
int IdentityOf(int dirfd, const char* name, int flags, FileId* id) {
#if defined(__linux__) && defined(STATX_INO)
  // Seccomp filters older than statx answer ENOSYS or EPERM: use fstatat.
  static std::atomic<bool> no_statx{false};
  if (!no_statx.load(std::memory_order_relaxed)) {
    struct statx sx;
    if (statx(dirfd, name, flags, STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_UID | STATX_INO,
              &sx) == 0) {
      id->dev = makedev(sx.stx_dev_major, sx.stx_dev_minor);
      id->ino = sx.stx_ino;
      id->mode = sx.stx_mode;
      id->nlink = sx.stx_nlink;
      id->uid = sx.stx_uid;
      return 0;
    }
    if (errno != ENOSYS && errno != EPERM) return -1;
    no_statx.store(true, std::memory_order_relaxed);
  }
#endif
  struct stat st;
  if (fstatat(dirfd, name, &st, flags) != 0) return -1;
  id->dev = st.st_dev;
  id->ino = st.st_ino;
  id->mode = st.st_mode;
  id->nlink = st.st_nlink;
  id->uid = st.st_uid;
  return 0;
}

int IdentityOfFd(int fd, FileId* id) {
#if defined(AT_EMPTY_PATH)
  return IdentityOf(fd, "", AT_EMPTY_PATH, id);
#else
  struct stat st;
  if (fstat(fd, &st) != 0) return -1;
  *id = FileId{st.st_dev, st.st_ino, st.st_mode, st.st_nlink, st.st_uid};
  return 0;
#endif
}

struct OpenResult {
  int fd = -1;
  int err = 0;
  const char* syscall = "open";
  bool writable = false;
  FileId id;  // of the opened file: its dev/ino never change
};

// Opens (creating if needed) the lock file `name` in the directory `dirfd`
// (verified and pinned by src/, so it cannot be swapped for another after
// the check; if it was deleted, creating in it fails with ENOENT and src/
// sets the directory up again). What the file is gets checked by
// CheckLockFile, before anything is written to it.
OpenResult OpenLockFileUnchecked(int dirfd, const char* name, mode_t mode) {
  OpenResult r;
  int fd = OpenRetry(dirfd, name, O_RDWR | O_CREAT | kOpenFlags, mode);
  if (fd < 0 && errno == EACCES) {
    // fs.protected_regular: O_CREAT on a file another user owns in a sticky
    // world-writable directory fails with EACCES even when the mode allows
    // the open. Open the existing file without O_CREAT; if it isn't there,
    // the directory itself refused us and that first EACCES is the answer.
    fd = OpenRetry(dirfd, name, O_RDWR | kOpenFlags, 0);
    if (fd < 0 && errno == EACCES) {
      // Another user's file we may not write: flock works on a read-only
      // descriptor, only the holder record cannot be written.
      fd = OpenRetry(dirfd, name, O_RDONLY | kOpenFlags, 0);
      if (fd >= 0) {
        r.fd = fd;
        r.writable = false;
      }
    } else if (fd >= 0) {
      r.fd = fd;
      r.writable = true;
    }
    if (fd < 0) r.err = errno == ENOENT ? EACCES : errno;
  } else if (fd < 0) {
    r.err = errno;
  } else {
    r.fd = fd;
    r.writable = true;
  }
  return r;
}

// A plain file that nothing else is linked to, with the scope's mode: fills
// r->id, or sets r->err and r->syscall and closes the descriptor.
void CheckLockFile(OpenResult* r, mode_t mode, bool enforce_mode) {
  FileId& st = r->id;
  if (IdentityOfFd(r->fd, &st) != 0) {
    r->err = errno;
    r->syscall = "fstat";
  } else if (!S_ISREG(st.mode)) {
    r->err = S_ISDIR(st.mode) ? EISDIR : EINVAL;
    r->syscall = "open";
  } else if (st.nlink > 1) {
    // A hard link planted at the lock path would make us write the holder
    // record into someone else's file.
    r->err = EMLINK;
    r->syscall = "open";
  } else if (enforce_mode && st.uid == geteuid() && (st.mode & 07777) != mode) {
    // Machine scope: the creator's umask must not lock other users out.
    // fchmod on the descriptor, never chmod by path.
    if (fchmod(r->fd, mode) != 0) {
      r->err = errno;
      r->syscall = "fchmod";
    }
  }
  if (r->err != 0) {
    close(r->fd);
    r->fd = -1;
  }
}

OpenResult OpenLockFile(int dirfd, const char* name, mode_t mode, bool enforce_mode) {
  OpenResult r = OpenLockFileUnchecked(dirfd, name, mode);
  if (r.fd >= 0) CheckLockFile(&r, mode, enforce_mode);
  return r;
}

enum LockState { kAcquired = 0, kHeld = 1, kStale = 2 };

// Proves that the descriptor, flocked a moment ago, still names the file
// `name`: between our open and our flock a previous holder or a cleaner may
// have unlinked or replaced it, and a lock on an orphaned inode excludes
// nobody. `opened` is the descriptor's identity when the caller has one (a
// descriptor's dev/ino never change, and while the name resolves to them the
// file is linked, so no second fstat is needed); otherwise it is taken here.
// On kStale and on failure the flock is dropped.
int VerifyLocked(int fd, int dirfd, const char* name, bool writable, const FileId* opened, int* err,
                 const char** syscall) {
  FileId own, named;
  if (opened == nullptr) {
    if (IdentityOfFd(fd, &own) != 0) {
      *err = errno;
      *syscall = "fstat";
      FlockRetry(fd, LOCK_UN);
      return -1;
    }
    opened = &own;
  }
  if (IdentityOf(dirfd, name, AT_SYMLINK_NOFOLLOW, &named) != 0 || opened->dev != named.dev ||
      opened->ino != named.ino) {
    FlockRetry(fd, LOCK_UN);
    return kStale;
  }
#ifdef F_OFD_SETLK
  // Linux: an open-file-description lock next to the flock, so inspectors can
  // ask "is it held?" with F_OFD_GETLK, which takes nothing and so never
  // makes a concurrent tryLock fail. flock and fcntl locks are independent
  // on Linux; it vanishes with the descriptor, like the flock.
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = writable ? F_WRLCK : F_RDLCK;
  fl.l_whence = SEEK_SET;
  fcntl(fd, F_OFD_SETLK, &fl);
#else
  (void)writable;
#endif
  return kAcquired;
}

// flock(LOCK_EX|LOCK_NB), then VerifyLocked.
int LockFd(int fd, int dirfd, const char* name, bool writable, const FileId* opened, int* err,
           const char** syscall) {
  if (FlockRetry(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK || errno == EAGAIN) return kHeld;
    *err = errno;
    *syscall = "flock";
    return -1;
  }
  return VerifyLocked(fd, dirfd, name, writable, opened, err, syscall);
}

// Eight lowercase hex digits, as "%08x" would print them (snprintf is a
// measurable part of an acquisition).
void Hex8(char* out, uint32_t v) {
  static const char kDigits[] = "0123456789abcdef";
  for (int i = 7; i >= 0; i--, v >>= 4) out[i] = kDigits[v & 0xf];
}

// Writes the record whose JSON text is `arg` (read with kHeaderLen bytes of
// head room, which the header fills).
int WriteRecord(int fd, Utf8Arg& arg) {
  char* buf = arg.base();
  size_t json_len = arg.size();
  memcpy(buf, "IL1 ", 4);
  Hex8(&buf[4], static_cast<uint32_t>(json_len));
  buf[12] = ' ';
  Hex8(&buf[13], Fnv1a(arg.c_str(), json_len));
  buf[21] = '\n';
  size_t total = kHeaderLen + json_len;
  size_t off = 0;
  while (off < total) {
    ssize_t n = pwrite(fd, buf + off, total - off, static_cast<off_t>(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    off += static_cast<size_t>(n);
  }
  return 0;
}

bool ParseHex8(const char* p, uint32_t* out) {
  uint32_t v = 0;
  for (int i = 0; i < 8; i++) {
    char c = p[i];
    uint32_t d;
    if (c >= '0' && c <= '9') d = static_cast<uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<uint32_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = static_cast<uint32_t>(c - 'A' + 10);
    else return false;
    v = v << 4 | d;
  }
  *out = v;
  return true;
}

ssize_t PreadFull(int fd, char* buf, size_t len, off_t off) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, buf + got, len - got, off + static_cast<off_t>(got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return static_cast<ssize_t>(got);
}

// Returns true and the JSON text if a complete, intact record is there. One
// pread for a record that fits the buffer: on a regular file a short read
// means the end of the file, so reading on to see 0 would only cost a call.
bool ReadRecordOnce(int fd, std::string* out) {
  char buf[4096];
  ssize_t n;
  do n = pread(fd, buf, sizeof buf, 0);
  while (n < 0 && errno == EINTR);
  if (n < static_cast<ssize_t>(kHeaderLen) || memcmp(buf, "IL1 ", 4) != 0 || buf[12] != ' ' ||
      buf[21] != '\n')
    return false;
  uint32_t len = 0, sum = 0;
  if (!ParseHex8(&buf[4], &len) || !ParseHex8(&buf[13], &sum) || len > kMaxRecord) return false;
  out->assign(buf + kHeaderLen, std::min<size_t>(len, static_cast<size_t>(n) - kHeaderLen));
  if (out->size() < len) {
    if (n < static_cast<ssize_t>(sizeof buf)) return false;  // shorter than its header says
    size_t have = out->size();
    out->resize(len);
    ssize_t m = PreadFull(fd, &(*out)[have], len - have, static_cast<off_t>(kHeaderLen + have));
    if (m != static_cast<ssize_t>(len - have)) return false;
  }
  return Fnv1a(out->data(), out->size()) == sum;
}

// A reader can land in the middle of the holder's pwrite; a torn record fails
// its checksum and is read again.
bool ReadRecord(int fd, std::string* out) {
  for (int i = 0; i < 3; i++) {
    if (ReadRecordOnce(fd, out)) return true;
  }
  return false;
}

Napi::Value RecordOrNull(Napi::Env env, int fd) {
  std::string json;
  if (ReadRecord(fd, &json)) return Napi::String::New(env, json);
  return env.Null();
}

// open(dirfd, name, mode, enforceMode) -> [fd, writable]
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dirfd = info[0].As<Napi::Number>().Int32Value();
  Utf8Arg name(env, info[1]);
  if (!name.ok()) return env.Undefined();
  mode_t mode = info[2].As<Napi::Number>().Uint32Value();
  bool enforce = info[3].As<Napi::Boolean>();
  OpenResult r = OpenLockFile(dirfd, name.c_str(), mode, enforce);
  if (r.fd < 0) {
    ThrowSystemError(env, r.err, r.syscall, name.str());
    return env.Undefined();
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, r.fd));
  out.Set(1u, Napi::Boolean::New(env, r.writable));
  return out;
}

// lock(fd, dirfd, name, writable, record|null) -> 0 acquired | 1 held |
// 2 stale (the descriptor no longer names the file: reopen). On 0 the record
// has been written when `record` is a string and `writable`.
Napi::Value Lock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = info[0].As<Napi::Number>().Int32Value();
  int dirfd = info[1].As<Napi::Number>().Int32Value();
  Utf8Arg name(env, info[2]);
  if (!name.ok()) return env.Undefined();
  bool writable = info[3].As<Napi::Boolean>();
  int err = 0;
  const char* syscall = "flock";
  int state = LockFd(fd, dirfd, name.c_str(), writable, nullptr, &err, &syscall);
  if (state < 0) {
    ThrowSystemError(env, err, syscall, name.str());
    return env.Undefined();
  }
  if (state == kAcquired && writable && info[4].IsString()) {
    Utf8Arg record(env, info[4], kHeaderLen);
    if (record.ok()) WriteRecord(fd, record);
  }
  return Napi::Number::New(env, state);
}

// acquire(dirfd, name, mode, enforceMode, record) -> fd | string|null (held:
// the holder's record) — open + lock + write in one call, the tryLock fast
// path. Identity changes between open and flock are retried here.
Napi::Value Acquire(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int dirfd = info[0].As<Napi::Number>().Int32Value();
  Utf8Arg name(env, info[1]);
  if (!name.ok()) return env.Undefined();
  mode_t mode = info[2].As<Napi::Number>().Uint32Value();
  bool enforce = info[3].As<Napi::Boolean>();
  for (int attempt = 0; attempt < 64; attempt++) {
    // A failed try is open, flock, read the record, close: what the file is
    // matters only once it is ours to write to, so it is checked after the
    // flock. A planted non-file held by someone reads as held, no record.
    OpenResult r = OpenLockFileUnchecked(dirfd, name.c_str(), mode);
    if (r.fd < 0) {
      ThrowSystemError(env, r.err, r.syscall, name.str());
      return env.Undefined();
    }
    if (FlockRetry(r.fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      if (err == EWOULDBLOCK || err == EAGAIN) {
        Napi::Value record = RecordOrNull(env, r.fd);
        close(r.fd);
        return record;
      }
      close(r.fd);
      ThrowSystemError(env, err, "flock", name.str());
      return env.Undefined();
    }
    CheckLockFile(&r, mode, enforce);
    if (r.fd < 0) {
      ThrowSystemError(env, r.err, r.syscall, name.str());
      return env.Undefined();
    }
    int err = 0;
    const char* syscall = "flock";
    int state = VerifyLocked(r.fd, dirfd, name.c_str(), r.writable, &r.id, &err, &syscall);
    if (state == kAcquired) {
      if (r.writable && info[4].IsString()) {
        // Read only now: a failed try never converts the record.
        Utf8Arg record(env, info[4], kHeaderLen);
        if (record.ok()) WriteRecord(r.fd, record);
      }
      return Napi::Number::New(env, r.fd);
    }
    close(r.fd);
    if (state < 0) {
      ThrowSystemError(env, err, syscall, name.str());
      return env.Undefined();
    }
  }
  ThrowSystemError(env, EAGAIN, "flock", name.str());
  return env.Undefined();
}

// probe(path) -> null (no file) | [held, record|null, dev, ino]
// Takes no lock of any kind, so it can never make a concurrent acquire fail.
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
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
#ifdef F_OFD_GETLK
  int r = fcntl(fd, F_OFD_GETLK, &fl);
#else
  // The BSDs and macOS keep flock and fcntl locks in one table, so F_GETLK
  // reports a flock holder without taking anything.
  int r = fcntl(fd, F_GETLK, &fl);
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
  return RecordOrNull(info.Env(), info[0].As<Napi::Number>().Int32Value());
}

// writeRecord(fd, json): throws on failure (e.g. EBADF on a read-only fd).
Napi::Value WriteRecordJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Utf8Arg record(env, info[1], kHeaderLen);
  if (!record.ok()) return env.Undefined();
  int err = WriteRecord(info[0].As<Napi::Number>().Int32Value(), record);
  if (err != 0) ThrowSystemError(env, err, "write", "");
  return env.Undefined();
}

// flock(fd, shared, nonblocking) -> true acquired / false would block
Napi::Value FlockJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
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

Napi::Value Close(const Napi::CallbackInfo& info) {
  // close() is not retried on EINTR: on Linux the descriptor is gone anyway.
  close(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// fsType(path) -> statfs magic number (Linux) or type name (BSD, macOS).
Napi::Value FsType(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>();
  struct statfs sf;
  if (statfs(path.c_str(), &sf) != 0) {
    ThrowSystemError(env, errno, "statfs", path);
    return env.Undefined();
  }
#if defined(__linux__)
  return Napi::Number::New(env, static_cast<double>(static_cast<uint32_t>(sf.f_type)));
#else
  return Napi::String::New(env, sf.f_fstypename);
#endif
}

#if defined(__linux__)
// Waiters watch their lock file for close: a holder's release and a holder's
// death both close its descriptor, and the kernel reports it at once. One
// inotify instance per addon instance (per thread running JS), polled by that
// thread's libuv loop, opened by the first wait and kept until the
// environment ends: closing an inotify instance waits for the kernel's
// fsnotify teardown (an SRCU grace period: 5 ms on average here, up to 24),
// which must not stall the event loop each time a wait settles. Between waits
// it holds no watch and is unreferenced, so it keeps nothing alive. The
// callback receives the watch descriptors that saw something; src/ decides
// what to do.
constexpr uint32_t kWatchMask =
    IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF;

struct Watcher {
  int fd = -1;
  uv_poll_t* poll = nullptr;
  napi_env env = nullptr;
  napi_ref callback = nullptr;
  napi_ref resource = nullptr;
  napi_async_context context = nullptr;
};

void OnPollClosed(uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); }

void StopWatcher(Watcher* w) {
  if (w->poll != nullptr) {
    uv_poll_stop(w->poll);
    w->poll->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(w->poll), OnPollClosed);
    w->poll = nullptr;
  }
  if (w->fd >= 0) {
    close(w->fd);
    w->fd = -1;
  }
}

// Runs from the libuv loop, also while the environment is being torn down
// (Node runs the loop once more to close handles before cleanup hooks), when
// calling into JS is no longer possible: plain Node-API calls with their
// status checked, so a failure is a quiet return and never an abort.
void OnReadable(uv_poll_t* handle, int, int) {
  Watcher* w = static_cast<Watcher*>(handle->data);
  if (w == nullptr || w->fd < 0) return;
  std::vector<int32_t> wds;
  alignas(struct inotify_event) char buf[4096];
  for (;;) {
    ssize_t n = read(w->fd, buf, sizeof buf);
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* ev = reinterpret_cast<struct inotify_event*>(p);
      wds.push_back(ev->wd);
      p += sizeof(struct inotify_event) + ev->len;
    }
  }
  if (wds.empty()) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value arr, fn, resource, result;
  bool ok = napi_create_array_with_length(env, wds.size(), &arr) == napi_ok &&
            napi_get_reference_value(env, w->callback, &fn) == napi_ok &&
            napi_get_reference_value(env, w->resource, &resource) == napi_ok;
  for (size_t i = 0; ok && i < wds.size(); i++) {
    napi_value v;
    ok = napi_create_int32(env, wds[i], &v) == napi_ok &&
         napi_set_element(env, arr, static_cast<uint32_t>(i), v) == napi_ok;
  }
  // MakeCallback drains the microtask and nextTick queues afterwards, as any
  // libuv-driven call into JS must.
  napi_status status = ok ? napi_make_callback(env, w->context, resource, fn, 1, &arr, &result) : napi_ok;
  if (status == napi_pending_exception) {
    napi_value err;
    if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
}

void FinalizeWatcher(Napi::Env env, Watcher* w) {
  StopWatcher(w);
  if (w->context != nullptr) napi_async_destroy(env, w->context);
  if (w->callback != nullptr) napi_delete_reference(env, w->callback);
  if (w->resource != nullptr) napi_delete_reference(env, w->resource);
  delete w;
}

Watcher* GetWatcher(Napi::Env env) { return env.GetInstanceData<Watcher>(); }

// watchStart(callback): opens this thread's inotify instance and polls it.
// Idempotent; the callback given first is kept.
Napi::Value WatchStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (GetWatcher(env) != nullptr) return env.Undefined();
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    ThrowSystemError(env, errno, "inotify_init1", "");
    return env.Undefined();
  }
  auto* w = new Watcher();
  w->env = env;
  napi_create_reference(env, info[0], 1, &w->callback);
  napi_value resource;
  napi_create_object(env, &resource);
  napi_create_reference(env, resource, 1, &w->resource);
  napi_async_init(env, resource, Napi::String::New(env, "instance-lock:wait"), &w->context);
  env.SetInstanceData<Watcher, FinalizeWatcher>(w);
  napi_add_env_cleanup_hook(env, [](void* arg) { StopWatcher(static_cast<Watcher*>(arg)); }, w);
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  w->fd = fd;
  w->poll = new uv_poll_t();
  w->poll->data = w;
  uv_poll_init(loop, w->poll, fd);
  uv_poll_start(w->poll, UV_READABLE, OnReadable);
  uv_unref(reinterpret_cast<uv_handle_t*>(w->poll));
  return env.Undefined();
}

// watchRef(bool): a pending wait keeps the process alive, as a timer does;
// with none pending the instance keeps nothing alive.
Napi::Value WatchRef(const Napi::CallbackInfo& info) {
  Watcher* w = GetWatcher(info.Env());
  if (w != nullptr && w->poll != nullptr) {
    auto* handle = reinterpret_cast<uv_handle_t*>(w->poll);
    if (info[0].As<Napi::Boolean>())
      uv_ref(handle);
    else
      uv_unref(handle);
  }
  return info.Env().Undefined();
}

// watchAdd(path) -> watch descriptor (the same inode gives the same number).
Napi::Value WatchAdd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Watcher* w = GetWatcher(env);
  std::string path = info[0].As<Napi::String>();
  int wd = w == nullptr || w->fd < 0 ? (errno = EBADF, -1)
                                     : inotify_add_watch(w->fd, path.c_str(), kWatchMask | IN_DONT_FOLLOW);
  if (wd < 0) {
    ThrowSystemError(env, errno, "inotify_add_watch", path);
    return env.Undefined();
  }
  return Napi::Number::New(env, wd);
}

Napi::Value WatchRemove(const Napi::CallbackInfo& info) {
  Watcher* w = GetWatcher(info.Env());
  // EINVAL: the kernel already dropped the watch (file deleted).
  if (w != nullptr && w->fd >= 0) inotify_rm_watch(w->fd, info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}
#endif

}  // namespace

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("AT_FDCWD", Napi::Number::New(env, AT_FDCWD));
  exports.Set("open", Napi::Function::New(env, Open, "open"));
  exports.Set("lock", Napi::Function::New(env, Lock, "lock"));
  exports.Set("acquire", Napi::Function::New(env, Acquire, "acquire"));
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("readRecord", Napi::Function::New(env, ReadRecordJs, "readRecord"));
  exports.Set("writeRecord", Napi::Function::New(env, WriteRecordJs, "writeRecord"));
  exports.Set("flock", Napi::Function::New(env, FlockJs, "flock"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  exports.Set("fsType", Napi::Function::New(env, FsType, "fsType"));
#if defined(__linux__)
  exports.Set("watchStart", Napi::Function::New(env, WatchStart, "watchStart"));
  exports.Set("watchAdd", Napi::Function::New(env, WatchAdd, "watchAdd"));
  exports.Set("watchRemove", Napi::Function::New(env, WatchRemove, "watchRemove"));
  exports.Set("watchRef", Napi::Function::New(env, WatchRef, "watchRef"));
#endif
}

}  // namespace instance_lock
