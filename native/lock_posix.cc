// Unix primitives: open a lock file safely, flock it, re-check its identity,
// read/write the holder record, probe without taking anything, and wait for
// a lock on a thread of our own (Linux; never the libuv pool).
//
// Every call takes plain values and either returns a plain value or throws an
// Error carrying errno/syscall/path; src/ decides what any of it means.
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <cstring>
#include <string>
#include <vector>

#include <napi.h>
#include <uv.h>

#if defined(__linux__)
#include <dlfcn.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/vfs.h>
#else
#include <pthread.h>
#include <sys/mount.h>
#include <sys/param.h>
#endif
#if defined(__FreeBSD__)
#include <pthread_np.h>
#endif

#include "platform.h"

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

#if defined(__linux__) && !IL_LINUX
int InstanceLockBsdGetLk(int fd, struct flock* fl);
#endif

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

struct Waits;

// What one Node environment (the main thread, or a Worker) has of the
// addon: the descriptors it was handed (lock files held, waited on or kept
// as spares; scope directories), and its blocking waits. When the
// environment ends, its waits are cancelled and its descriptors closed, so
// a Worker's locks and waits end with the Worker, as on Windows.
struct Env {
  std::vector<uint8_t> owned;  // by descriptor number: 1 when owned
  Waits* waits = nullptr;      // Linux, from the first blocking wait on
  napi_async_cleanup_hook_handle cleanup = nullptr;
};

Env* EnvOf(Napi::Env env) {
  void* data = nullptr;
  napi_get_instance_data(env, &data);
  return static_cast<Env*>(data);
}

void Track(Env* env, int fd) {
  if (fd < 0) return;
  // Grown by push_back: resize() would make the Linux prebuilds need a
  // newer libstdc++ (__throw_bad_array_new_length) than Node 20 supports.
  while (env->owned.size() <= static_cast<size_t>(fd)) env->owned.push_back(0);
  env->owned[static_cast<size_t>(fd)] = 1;
}

void Untrack(Env* env, int fd) {
  if (fd >= 0 && static_cast<size_t>(fd) < env->owned.size()) env->owned[static_cast<size_t>(fd)] = 0;
}

// A call from src/ with arguments of the wrong types: a TypeError, never
// garbage read as a number.
Napi::Value ThrowType(Napi::Env env, const char* signature) {
  Napi::TypeError::New(env, std::string("instance-lock addon: expected ") + signature).ThrowAsJavaScriptException();
  return env.Undefined();
}

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
#if IL_LINUX && defined(STATX_INO)
  // Seccomp filters older than statx answer ENOSYS or EPERM: use fstatat.
  static std::atomic<bool> no_statx{false};
  if (!no_statx.load(std::memory_order_relaxed)) {
    struct statx sx;
    if (statx(dirfd, name, flags, STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_UID | STATX_INO, &sx) == 0) {
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
#if defined(AT_EMPTY_PATH) && !defined(INSTANCE_LOCK_PORTABLE)
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

// What is checked of a lock file (the `checks` argument of open, lock,
// acquire and waitStart): kCheckMode, it has the scope's mode (machine
// scope); kCheckName, after each flock its name is looked up again and must
// still lead to it. Without kCheckName only its link count is looked at: a
// file unlinked or replaced (renamed over) has none left. src/ asks for the
// lookup where that is not enough: on file systems where a client renames
// a file deleted while open (NFS's .nfsXXXX, FUSE's .fuse_hidden), or where
// a deletion may leave the opened inode's count alone (overlayfs: a file of
// a lower layer opened read-only). kCheckOwner, after each flock the file
// must belong to the caller, which src/ asks of root in machine scope: the
// user who created a lock file owns it and, owner of the file, could unlink
// it from the sticky directory while root holds the lock, so that a second
// process creates and takes a new one. Taken over (by descriptor, before the
// identity re-check), the file can be deleted only by root.
constexpr int kCheckMode = 1;
constexpr int kCheckName = 2;
constexpr int kCheckOwner = 4;

// A plain file that nothing else is linked to, with the scope's mode: 0, or
// an errno and the failing call.
int CheckFile(int fd, const FileId& st, mode_t mode, int checks, const char** syscall) {
  *syscall = "open";
  if (!S_ISREG(st.mode)) return S_ISDIR(st.mode) ? EISDIR : EINVAL;
  // A hard link planted at the lock path would make us write the holder
  // record into someone else's file.
  if (st.nlink > 1) return EMLINK;
  if ((checks & kCheckMode) != 0 && st.uid == geteuid() && (st.mode & 07777) != mode) {
    // Machine scope: the creator's umask must not lock other users out.
    // fchmod on the descriptor, never chmod by path.
    *syscall = "fchmod";
    if (fchmod(fd, mode) != 0) return errno;
  }
  return 0;
}

// CheckFile on an open descriptor: fills r->id, or sets r->err and
// r->syscall and closes the descriptor.
void CheckLockFile(OpenResult* r, mode_t mode, int checks) {
  if (IdentityOfFd(r->fd, &r->id) != 0) {
    r->err = errno;
    r->syscall = "fstat";
  } else {
    r->err = CheckFile(r->fd, r->id, mode, checks, &r->syscall);
  }
  if (r->err != 0) {
    close(r->fd);
    r->fd = -1;
  }
}

OpenResult OpenLockFile(int dirfd, const char* name, mode_t mode, int checks) {
  OpenResult r = OpenLockFileUnchecked(dirfd, name, mode);
  if (r.fd >= 0) CheckLockFile(&r, mode, checks);
  return r;
}

enum LockState { kAcquired = 0, kHeld = 1, kStale = 2 };

// Whether the file whose descriptor has the identity `own` is no longer the
// lock file `name`: it has no link left (deleted, or renamed over), or, with
// kCheckName, the name leads elsewhere or nowhere.
bool NoLongerNamed(const FileId& own, int dirfd, const char* name, int checks) {
  if (own.nlink == 0) return true;
  if ((checks & kCheckName) == 0) return false;
  FileId named;
  return IdentityOf(dirfd, name, AT_SYMLINK_NOFOLLOW, &named) != 0 || own.dev != named.dev || own.ino != named.ino;
}

// Proves that the descriptor, flocked a moment ago, still names the file
// `name`: between our open and our flock a previous holder or a cleaner may
// have unlinked or replaced it, and a lock on an orphaned inode excludes
// nobody. An orphan has no link left; with kCheckName the name must also
// still lead to the descriptor's device and inode. The descriptor is checked
// (CheckFile) before anything is written to it. On kStale and on failure the
// flock is dropped.
int VerifyLocked(int fd, int dirfd, const char* name, mode_t mode, int checks, int* err, const char** syscall) {
  FileId own;
  if (IdentityOfFd(fd, &own) != 0) {
    *err = errno;
    *syscall = "fstat";
    FlockRetry(fd, LOCK_UN);
    return -1;
  }
  if ((checks & kCheckOwner) != 0 && own.uid != geteuid() && S_ISREG(own.mode) && own.nlink == 1) {
    // Taken over before the re-check below: an unlink by the old owner
    // before the fchown shows there; after it, none is allowed. Only the
    // owner is changed, so the mode (and every other user's access) stays.
    // Only a plain file with no other name: a hard link planted at the lock
    // path (refused by CheckFile below) must not cost its victim the file.
    if (fchown(fd, geteuid(), static_cast<gid_t>(-1)) != 0 || IdentityOfFd(fd, &own) != 0) {
      *err = errno;
      *syscall = "fchown";
      FlockRetry(fd, LOCK_UN);
      return -1;
    }
  }
  if (NoLongerNamed(own, dirfd, name, checks)) {
    FlockRetry(fd, LOCK_UN);
    return kStale;
  }
  *err = CheckFile(fd, own, mode, checks, syscall);
  if (*err != 0) {
    FlockRetry(fd, LOCK_UN);
    return -1;
  }
  return kAcquired;
}

// Linux: an open-file-description lock next to the flock, so inspectors can
// ask "is it held?" with F_OFD_GETLK, which takes nothing and so never makes
// a concurrent tryLock fail. flock and fcntl locks are independent on Linux;
// it vanishes with the descriptor, like the flock. Set only once the holder
// record is written: an inspector that sees it held reads the new holder,
// never the previous one.
void SetIndicator(int fd, bool writable) {
#if IL_LINUX && defined(F_OFD_SETLK)
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = writable ? F_WRLCK : F_RDLCK;
  fl.l_whence = SEEK_SET;
  fcntl(fd, F_OFD_SETLK, &fl);
#else
  (void)fd;
  (void)writable;
#endif
}

// flock(LOCK_EX|LOCK_NB), then VerifyLocked.
int LockFd(int fd, int dirfd, const char* name, mode_t mode, int checks, int* err, const char** syscall) {
  if (FlockRetry(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK || errno == EAGAIN) return kHeld;
    *err = errno;
    *syscall = "flock";
    return -1;
  }
  return VerifyLocked(fd, dirfd, name, mode, checks, err, syscall);
}

// Eight lowercase hex digits, as "%08x" would print them (snprintf is a
// measurable part of an acquisition).
void Hex8(char* out, uint32_t v) {
  static const char kDigits[] = "0123456789abcdef";
  for (int i = 7; i >= 0; i--, v >>= 4) out[i] = kDigits[v & 0xf];
}

// Writes the record whose JSON text, `json_len` bytes, follows kHeaderLen
// bytes of head room at `buf`, which the header fills.
int WriteRecord(int fd, char* buf, size_t json_len) {
  memcpy(buf, "IL1 ", 4);
  Hex8(&buf[4], static_cast<uint32_t>(json_len));
  buf[12] = ' ';
  Hex8(&buf[13], Fnv1a(buf + kHeaderLen, json_len));
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

int WriteRecord(int fd, Utf8Arg& arg) { return WriteRecord(fd, arg.base(), arg.size()); }

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
  if (n < static_cast<ssize_t>(kHeaderLen) || memcmp(buf, "IL1 ", 4) != 0 || buf[12] != ' ' || buf[21] != '\n')
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

// open(dirfd, name, mode, checks) -> [fd, writable]
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
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

// Whether the descriptor `fd` no longer names the lock file `name`, looked
// at without a lock held.
bool Orphaned(int fd, int dirfd, const char* name, int checks) {
  FileId own;
  return IdentityOfFd(fd, &own) != 0 || NoLongerNamed(own, dirfd, name, checks);
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
  Env* home = EnvOf(env);
  int dirfd = info[0].As<Napi::Number>().Int32Value();
  Utf8Arg name(env, info[1]);
  if (!name.ok()) return env.Undefined();
  mode_t mode = info[2].As<Napi::Number>().Uint32Value();
  int checks = info[3].As<Napi::Number>().Int32Value();
  int spare = info[6].IsNumber() ? info[6].As<Napi::Number>().Int32Value() : -1;
  for (int attempt = 0; attempt < 64; attempt++) {
    // A failed try is open, flock, read the record, close: what the file is
    // matters only once it is ours to write to, so it is checked after the
    // flock. A planted non-file held by someone reads as held, no record.
    OpenResult r;
    bool reused = spare >= 0;
    if (reused) {
      r.fd = spare;
      r.writable = info[7].ToBoolean();
      spare = -1;
    } else {
      r = OpenLockFileUnchecked(dirfd, name.c_str(), mode);
    }
    if (r.fd < 0) {
      ThrowSystemError(env, r.err, r.syscall, name.str());
      return env.Undefined();
    }
    int err = 0;
    const char* syscall = "flock";
    int state = LockFd(r.fd, dirfd, name.c_str(), mode, checks, &err, &syscall);
    if (state == kHeld) {
      if (info[5].ToBoolean()) {
        // A waiter re-checks its descriptor after its flock and every 250 ms.
        Track(home, r.fd);
        Napi::Array out = Napi::Array::New(env, 2);
        out.Set(0u, Napi::Number::New(env, r.fd));
        out.Set(1u, Napi::Boolean::New(env, r.writable));
        return out;
      }
      // A kept descriptor may have outlived its file: then the holder of
      // the orphan is nobody's business, and the file at the path is tried.
      if (reused && Orphaned(r.fd, dirfd, name.c_str(), checks)) {
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
      if (r.writable && info[4].IsString()) {
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

// Drops the lock held on `fd`, then closes it. close() alone frees the locks
// only with the last reference to the open file description: a child that
// inherited the descriptor, or anyone reading /proc/<pid>/fd or fdinfo at
// that moment (lsof, fuser, monitoring agents), would keep the lock held
// after release() returned, and this process's next tryLock would be
// refused by its own lock. The indicator goes first, as it came last: it is
// only ever set while the flock is held.
void UnlockFd(int fd) {
#if IL_LINUX && defined(F_OFD_SETLK)
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_UNLCK;
  fl.l_whence = SEEK_SET;
  fcntl(fd, F_OFD_SETLK, &fl);
#endif
  FlockRetry(fd, LOCK_UN);
}

void ReleaseFd(int fd) {
  UnlockFd(fd);
  close(fd);
}

// close() is not retried on EINTR: on Linux the descriptor is gone anyway.
void CloseFd(int fd) { close(fd); }

// release(fd) and close(fd): lets go of the descriptor with `let_go`, and
// of this environment's claim on it.
Napi::Value LetGo(const Napi::CallbackInfo& info, const char* signature, void (*let_go)(int)) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) return ThrowType(env, signature);
  int fd = info[0].As<Napi::Number>().Int32Value();
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
  UnlockFd(info[0].As<Napi::Number>().Int32Value());
  return info.Env().Undefined();
}

// openDir(path) -> fd of the directory, opened without following a symlink
// at `path` itself; closed with close(), and with the environment.
Napi::Value OpenDir(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) return ThrowType(env, "openDir(path)");
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
  Utf8Arg name(env, info[2]);
  if (!name.ok()) return env.Undefined();
  bool same = !Orphaned(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(), name.c_str(),
                        kCheckName);
  return Napi::Boolean::New(env, same);
}

#if IL_LINUX
// Waiting: a thread of our own (never one of libuv's pool) blocks in
// flock(LOCK_EX), so the kernel itself hands the lock over the moment the
// holder releases it or dies, with no polling and no event to miss. The
// thread then does what the loop would do after a flock (check the file,
// re-check that the descriptor still names it, write the holder record
// stamped with the time, set the inspection indicator) and reports. A
// process woken from idle runs slowly for a while, so the less its loop has
// to do, the sooner the caller holds the lock.
//
// Threads are kept for the next wait (up to kMaxIdle, parked on a condition
// variable, costing nothing): creating one per wait, and its exit, cost more
// than the rest of a handoff. Each environment (thread running JS) has one
// async handle and one callback for all its waits; ended waits queue for it.
//
// Cancelling (a timeout, an abort, the environment ending) is synchronous
// and never unwinds the thread: the canceller sets the wait's flag and sends
// the thread a real-time signal whose handler, only while the thread is
// "armed" around its flock call, jumps out of it. Every moment the signal
// can land is handled: before the flag check (the check sees it), between
// the check and the call, in the call (EINTR), or just as flock returned 0
// (then the lock was ours and goes with the descriptor). The canceller waits
// until the thread has let go of the wait (microseconds: the thread is never
// anywhere slow), then unlocks and closes the descriptor itself. So a wait
// that settled as timed out or aborted holds nothing afterwards, and no
// thread works for an environment that is gone. Asynchronous thread
// cancellation is not used: a cancel request delivered after a thread
// disabled cancellation can still unwind it in some C libraries.
enum WaitState { kWaitAcquired = 0, kWaitStale = 2, kWaitFailed = 3 };

struct BlockingWait;
struct Waits;

struct WaitThread {
  pthread_t thread{};
  pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
  BlockingWait* job = nullptr;  // guarded by g_mutex
  sigjmp_buf jump;
  volatile sig_atomic_t armed = 0;  // this thread only, and its signal handler
};

pthread_mutex_t g_mutex = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_let_go = PTHREAD_COND_INITIALIZER;  // a thread let go of a cancelled wait
std::vector<WaitThread*> g_idle;                     // guarded by g_mutex
constexpr size_t kMaxIdle = 4;
int g_wake_signal = 0;  // guarded by g_mutex; set once per process

// The waiting thread running here, for the signal handler. initial-exec, so
// the handler never allocates (the general-dynamic model of a dlopen'ed
// library may, on a thread's first access).
__thread WaitThread* t_self __attribute__((tls_model("initial-exec"))) = nullptr;

void OnWakeSignal(int) {
  WaitThread* t = t_self;
  if (t != nullptr && t->armed) {
    t->armed = 0;
    siglongjmp(t->jump, 1);
  }
}

// Picks a real-time signal nothing in the process uses (default action, no
// handler) and installs the wake-up handler on it, once per process; 0 if
// every one is taken. No SA_RESTART: an interrupted flock returns EINTR.
//
// From then on the addon stays loaded for the life of the process: Node
// unloads an addon when the last environment that loaded it ends (a Worker,
// where the main thread never loaded it), which would leave the handler and
// the parked threads pointing into unmapped code.
int WakeSignal() {
  if (g_wake_signal != 0) return g_wake_signal;
  Dl_info self;
  if (dladdr(reinterpret_cast<void*>(&OnWakeSignal), &self) == 0 || self.dli_fname == nullptr ||
      dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) == nullptr)
    return 0;
  for (int sig = SIGRTMAX; sig >= SIGRTMIN; sig--) {
    struct sigaction old;
    if (sigaction(sig, nullptr, &old) != 0 || (old.sa_flags & SA_SIGINFO) != 0 || old.sa_handler != SIG_DFL) continue;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = OnWakeSignal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, nullptr) == 0) {
      g_wake_signal = sig;
      break;
    }
  }
  return g_wake_signal;
}

struct BlockingWait {
  uint32_t id = 0;
  int fd = -1;
  int dirfd = AT_FDCWD;  // our own duplicate, closed at the end
  std::string name;
  bool writable = false;
  mode_t mode = 0;
  int checks = 0;
  // The holder record, header room in front, with kStampPlaceholder where
  // the acquisition time goes; empty for none.
  std::string record;
  size_t stamp_at = 0;
  Waits* owner = nullptr;
  // Guarded by g_mutex: the thread working on it (from dispatch until it
  // lets go), whether it is done with it, whether it reported, and whether
  // it was cancelled (also in `stop`, which the thread reads unlocked).
  WaitThread* runner = nullptr;
  bool done = false;
  bool reported = false;
  bool cancel = false;
  bool orphaned = false;  // the canceller gave up waiting: the thread cleans up
  std::atomic<bool> stop{false};
  // The outcome, written by the thread before it lets go.
  int state = -1;
  int err = 0;
  const char* syscall = "flock";
  double at = 0;           // kWaitAcquired: ms since the epoch
  bool cancelled = false;  // loop thread only
};

// The waits of one environment. `ended` is filled by the threads and
// emptied by the loop; a thread reports with the mutex held, so once a wait
// is in `ended` its thread has finished with the environment's handle too.
struct Waits {
  napi_env env = nullptr;
  Env* home = nullptr;
  bool closing = false;  // the environment ends: no more callbacks
  uv_async_t* async = nullptr;
  napi_ref callback = nullptr;
  napi_ref resource = nullptr;
  napi_async_context context = nullptr;
  std::vector<BlockingWait*> active;  // loop thread only
  size_t referenced = 0;              // active waits not cancelled
  uint32_t next_id = 1;
  pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
  std::vector<BlockingWait*> ended;  // guarded by mutex
};

void Report(BlockingWait* w) {
  Waits* waits = w->owner;
  pthread_mutex_lock(&waits->mutex);
  waits->ended.push_back(w);
  uv_async_send(waits->async);
  pthread_mutex_unlock(&waits->mutex);
}

// The time as src/record.ts stamps it, 24 characters: 1970-01-01T00:00:00.000Z.
const char kStampPlaceholder[] = "\"startedAt\":\"1970-01-01T00:00:00.000Z\"";
constexpr size_t kStampOffset = 13;  // of the time within the placeholder

double StampNow(char* out) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  time_t secs = ts.tv_sec;
  int ms = static_cast<int>(ts.tv_nsec / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char buf[64];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  memcpy(out, buf, 24);
  return static_cast<double>(secs) * 1000 + ms;
}

// After flock(LOCK_EX) returned 0: as LockFd and Publish after a
// successful flock.
void Acquired(BlockingWait* w) {
  int state = VerifyLocked(w->fd, w->dirfd, w->name.c_str(), w->mode, w->checks, &w->err, &w->syscall);
  if (state < 0) {
    w->state = kWaitFailed;
    return;
  }
  if (state == kStale) {
    w->state = kWaitStale;
    return;
  }
  char* stamp = w->record.empty() ? nullptr : &w->record[kHeaderLen + w->stamp_at + kStampOffset];
  char ignored[24];
  w->at = StampNow(stamp != nullptr ? stamp : ignored);
  if (stamp != nullptr && w->writable) WriteRecord(w->fd, &w->record[0], w->record.size() - kHeaderLen);
  SetIndicator(w->fd, w->writable);
  w->state = kWaitAcquired;
}

// Blocks in flock(LOCK_EX) on the wait's descriptor: 0 once it is locked,
// an errno, or -1 when the wait was cancelled (the lock may then be held:
// the canceller drops it with the descriptor).
int BlockInFlock(WaitThread* t, BlockingWait* w) {
  for (;;) {
    // Nothing here is modified between sigsetjmp and the jump back.
    if (sigsetjmp(t->jump, 1) != 0) {
      if (w->stop.load()) return -1;
      continue;  // a wake-up meant for an earlier wait: wait on
    }
    t->armed = 1;
    if (w->stop.load()) {
      t->armed = 0;
      return -1;
    }
    int r = flock(w->fd, LOCK_EX);
    int err = errno;
    t->armed = 0;
    if (r == 0) return 0;
    if (err != EINTR) return err;
  }
}

// One wait, on the thread `t`. Returns whether the thread may be reused.
bool RunWait(WaitThread* t, BlockingWait* w) {
  int r = BlockInFlock(t, w);
  if (r == 0 && !w->stop.load()) {
    Acquired(w);
  } else if (r > 0) {
    w->err = r;
    w->state = kWaitFailed;
  }
  pthread_mutex_lock(&g_mutex);
  t->job = nullptr;
  w->runner = nullptr;
  w->done = true;
  if (w->orphaned) {
    // Nobody waits for it any more: drop what it may hold, and free it.
    ReleaseFd(w->fd);
    if (w->dirfd != AT_FDCWD) close(w->dirfd);
    delete w;
  } else if (w->cancel) {
    pthread_cond_broadcast(&g_let_go);
  } else {
    // The last touch of `w` and of its environment: once reported, the
    // loop may free it.
    w->reported = true;
    Report(w);
  }
  bool keep = g_idle.size() < kMaxIdle;
  if (keep) g_idle.push_back(t);
  pthread_mutex_unlock(&g_mutex);
  return keep;
}

void* WaitThreadMain(void* arg) {
  auto* t = static_cast<WaitThread*>(arg);
  t_self = t;
  // Named for ps -L, top -H and /proc/<pid>/task/*/comm.
  prctl(PR_SET_NAME, "instance-lock");
  // Created with every signal blocked, so the process's signals go to its
  // other threads; only the wake-up signal reaches this one.
  sigset_t set;
  sigfillset(&set);
  pthread_mutex_lock(&g_mutex);
  sigdelset(&set, g_wake_signal);
  pthread_sigmask(SIG_SETMASK, &set, nullptr);
  for (;;) {
    while (t->job == nullptr) pthread_cond_wait(&t->wake, &g_mutex);
    BlockingWait* w = t->job;
    pthread_mutex_unlock(&g_mutex);
    if (!RunWait(t, w)) break;
    pthread_mutex_lock(&g_mutex);
  }
  pthread_cond_destroy(&t->wake);
  delete t;
  return nullptr;
}

// Hands `w` to a parked thread, or to a new one. 0 or an errno. g_mutex held.
int Dispatch(BlockingWait* w) {
  if (!g_idle.empty()) {
    WaitThread* t = g_idle.back();
    g_idle.pop_back();
    t->job = w;
    w->runner = t;
    pthread_cond_signal(&t->wake);
    return 0;
  }
  auto* t = new WaitThread();
  t->job = w;
  w->runner = t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  // It runs flock, a few more calls and the signal handler.
  pthread_attr_setstacksize(&attr, 256 * 1024);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = pthread_create(&t->thread, &attr, WaitThreadMain, t);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (err != 0) {
    w->runner = nullptr;
    delete t;
  }
  return err;
}

// A pending wait keeps the process alive, as a timer does; a cancelled one
// does not.
void Unreference(Waits* waits) {
  if (--waits->referenced == 0) uv_unref(reinterpret_cast<uv_handle_t*>(waits->async));
}

void Detach(BlockingWait* w) {
  auto& active = w->owner->active;
  for (size_t i = 0; i < active.size(); i++) {
    if (active[i] == w) {
      active[i] = active.back();
      active.pop_back();
      break;
    }
  }
}

// Lets go of a wait that no thread will touch again.
void Finish(BlockingWait* w) {
  Detach(w);
  if (w->dirfd != AT_FDCWD) close(w->dirfd);
  delete w;
}

// How long a canceller waits for the thread, resending the signal every
// millisecond: the first one normally ends the wait within microseconds,
// but another library could have replaced the handler with one that
// restarts flock. Past that the wait is left to its thread, which drops
// the lock and frees it whenever flock returns: never a hang.
constexpr int kCancelTries = 1000;

// Ends the wait now: when this returns its thread has let go of it, and its
// descriptor (with the lock, if the thread got it meanwhile) is unlocked
// and closed. A wait whose report is still queued is freed by the loop.
void Cancel(Env* env, BlockingWait* w) {
  w->cancelled = true;
  Unreference(w->owner);
  pthread_mutex_lock(&g_mutex);
  w->cancel = true;
  w->stop.store(true);
  for (int i = 0; !w->done; i++) {
    if (i == kCancelTries) {
      w->orphaned = true;
      break;
    }
    pthread_kill(w->runner->thread, g_wake_signal);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 1000000;
    if (until.tv_nsec >= 1000000000) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&g_let_go, &g_mutex, &until);
  }
  bool orphaned = w->orphaned;
  bool queued = w->reported;
  pthread_mutex_unlock(&g_mutex);
  Untrack(env, w->fd);
  if (orphaned) {
    Detach(w);
    return;
  }
  ReleaseFd(w->fd);
  w->fd = -1;
  if (!queued) Finish(w);
}

// Runs from the libuv loop, also while the environment is being torn down,
// when calling into JS is no longer possible: plain Node-API calls with their
// status checked, so a failure is a quiet return and never an abort.
// callback(id, state, value, syscall) for each ended wait not cancelled:
// kWaitAcquired with the time, kWaitStale, or kWaitFailed with errno and
// syscall.
void OnWaitsEnded(uv_async_t* handle) {
  auto* waits = static_cast<Waits*>(handle->data);
  if (waits->closing) return;
  std::vector<BlockingWait*> ended;
  pthread_mutex_lock(&waits->mutex);
  ended.swap(waits->ended);
  pthread_mutex_unlock(&waits->mutex);
  napi_env env = waits->env;
  for (BlockingWait* w : ended) {
    if (w->cancelled) {
      Finish(w);
      continue;
    }
    uint32_t id = w->id;
    int state = w->state;
    double value = state == kWaitAcquired ? w->at : w->err;
    const char* syscall = w->syscall;
    Unreference(waits);
    Finish(w);
    napi_handle_scope scope;
    if (napi_open_handle_scope(env, &scope) != napi_ok) continue;
    napi_value fn, resource, argv[4], ret;
    bool ok = napi_get_reference_value(env, waits->callback, &fn) == napi_ok &&
              napi_get_reference_value(env, waits->resource, &resource) == napi_ok &&
              napi_create_uint32(env, id, &argv[0]) == napi_ok && napi_create_int32(env, state, &argv[1]) == napi_ok &&
              napi_create_double(env, value, &argv[2]) == napi_ok &&
              napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &argv[3]) == napi_ok;
    // MakeCallback drains the microtask and nextTick queues afterwards, as
    // any libuv-driven call into JS must.
    napi_status status = ok ? napi_make_callback(env, waits->context, resource, fn, 4, argv, &ret) : napi_ok;
    if (status == napi_pending_exception) {
      napi_value err;
      if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
    }
    napi_close_handle_scope(env, scope);
  }
}

// The environment ends: cancel every wait (each returns once its thread has
// let go), and free what the loop would have.
void StopWaits(Env* env) {
  Waits* waits = env->waits;
  // From the end: Cancel may remove the wait it ends, putting the last one
  // (already seen) in its place.
  for (size_t i = waits->active.size(); i-- > 0;) {
    BlockingWait* w = waits->active[i];
    if (!w->cancelled) Cancel(env, w);
  }
  OnWaitsEnded(waits->async);  // every wait is cancelled: nothing is called
}

// waitInit(callback) -> whether waits can block on a thread of ours: this
// environment's callback for ended waits, and its async handle. Once; later
// calls keep the first callback.
Napi::Value WaitInit(const Napi::CallbackInfo& info) {
  Napi::Env napi_env_ = info.Env();
  Env* env = EnvOf(napi_env_);
  if (env->waits != nullptr) return Napi::Boolean::New(napi_env_, true);
  if (!info[0].IsFunction()) return ThrowType(napi_env_, "waitInit(callback)");
  pthread_mutex_lock(&g_mutex);
  int sig = WakeSignal();
  pthread_mutex_unlock(&g_mutex);
  if (sig == 0) return Napi::Boolean::New(napi_env_, false);
  auto* waits = new Waits();
  waits->env = napi_env_;
  waits->home = env;
  napi_create_reference(napi_env_, info[0], 1, &waits->callback);
  napi_value resource;
  napi_create_object(napi_env_, &resource);
  napi_create_reference(napi_env_, resource, 1, &waits->resource);
  napi_async_init(napi_env_, resource, Napi::String::New(napi_env_, "instance-lock:wait"), &waits->context);
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(napi_env_, &loop);
  waits->async = new uv_async_t();
  uv_async_init(loop, waits->async, OnWaitsEnded);
  waits->async->data = waits;
  uv_unref(reinterpret_cast<uv_handle_t*>(waits->async));
  env->waits = waits;
  // glibc sets up the time zone (reads /etc/localtime) at the first
  // gmtime_r of a process, even for UTC: here, not on a waiting thread
  // between getting the lock and reporting it (StampNow).
  tzset();
  return Napi::Boolean::New(napi_env_, true);
}

// waitStart(fd, dirfd, name, writable, mode, checks, record|null) -> id.
// A thread blocks in flock(fd, LOCK_EX), then checks and verifies the lock
// and writes `record` (made for an acquisition at time 0: its startedAt is
// replaced by the time of the acquisition) as lock() does, and the callback
// given to waitInit is called with the id. Until then the pending wait keeps
// the process alive, as a timer does.
Napi::Value WaitStart(const Napi::CallbackInfo& info) {
  Napi::Env napi_env_ = info.Env();
  Env* env = EnvOf(napi_env_);
  Waits* waits = env->waits;
  if (waits == nullptr) return ThrowType(napi_env_, "waitStart before waitInit");
  if (!info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsString() || !info[3].IsBoolean() ||
      !info[4].IsNumber() || !info[5].IsNumber() || !(info[6].IsString() || info[6].IsNull()))
    return ThrowType(napi_env_, "waitStart(fd, dirfd, name, writable, mode, checks, record|null)");
  auto* w = new BlockingWait();
  w->fd = info[0].As<Napi::Number>().Int32Value();
  int dirfd = info[1].As<Napi::Number>().Int32Value();
  {
    Utf8Arg name(napi_env_, info[2]);
    if (!name.ok()) {
      delete w;
      return napi_env_.Undefined();
    }
    w->name = name.str();
  }
  w->writable = info[3].As<Napi::Boolean>();
  w->mode = info[4].As<Napi::Number>().Uint32Value();
  w->checks = info[5].As<Napi::Number>().Int32Value();
  if (info[6].IsString()) {
    Utf8Arg record(napi_env_, info[6], kHeaderLen);
    if (!record.ok()) {
      delete w;
      return napi_env_.Undefined();
    }
    const char* json = record.c_str();
    const char* at =
        static_cast<const char*>(memmem(json, record.size(), kStampPlaceholder, sizeof kStampPlaceholder - 1));
    if (at != nullptr) {
      w->record.assign(record.base(), kHeaderLen + record.size());
      w->stamp_at = static_cast<size_t>(at - json);
    }
  }
  if (dirfd != AT_FDCWD) {
    w->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (w->dirfd < 0) {
      int err = errno;
      delete w;
      ThrowSystemError(napi_env_, err, "fcntl", "");
      return napi_env_.Undefined();
    }
  }
  w->owner = waits;
  w->id = waits->next_id++;
  if (waits->next_id == 0) waits->next_id = 1;
  pthread_mutex_lock(&g_mutex);
  int err = Dispatch(w);
  pthread_mutex_unlock(&g_mutex);
  if (err != 0) {
    if (w->dirfd != AT_FDCWD) close(w->dirfd);
    delete w;
    ThrowSystemError(napi_env_, err, "pthread_create", "");
    return napi_env_.Undefined();
  }
  waits->active.push_back(w);
  if (waits->referenced++ == 0) uv_ref(reinterpret_cast<uv_handle_t*>(waits->async));
  return Napi::Number::New(napi_env_, w->id);
}

// waitCancel(id): ends the wait without calling back. When it returns, the
// wait's thread has let go of it and its descriptor is unlocked and closed
// (dropping the lock if the thread got it meanwhile); nothing of it keeps
// the process alive. Only for a wait whose callback has not run.
Napi::Value WaitCancel(const Napi::CallbackInfo& info) {
  Napi::Env napi_env_ = info.Env();
  Env* env = EnvOf(napi_env_);
  if (!info[0].IsNumber()) return ThrowType(napi_env_, "waitCancel(id)");
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  if (env->waits != nullptr) {
    for (BlockingWait* w : env->waits->active) {
      if (w->id == id && !w->cancelled) {
        Cancel(env, w);
        break;
      }
    }
  }
  return napi_env_.Undefined();
}
#endif

}  // namespace

#if IL_LINUX
void OnAsyncClosed(uv_handle_t* handle) {
  auto* waits = static_cast<Waits*>(handle->data);
  Env* env = waits->home;
  delete reinterpret_cast<uv_async_t*>(handle);
  pthread_mutex_destroy(&waits->mutex);
  delete waits;
  napi_remove_async_cleanup_hook(env->cleanup);
  delete env;
}
#endif

// The environment ends (a Worker terminates or returns, or the process
// exits): its waits are cancelled (each returns once its thread has let go),
// every descriptor it still has is closed, which frees its locks, and its
// async handle is closed. Node waits for the handle's close callback before
// it finishes the environment and unloads the addon: a handle closed later
// would call into unmapped code.
void EndEnvironment(napi_async_cleanup_hook_handle handle, void* arg) {
  auto* env = static_cast<Env*>(arg);
  env->cleanup = handle;
#if IL_LINUX
  Waits* waits = env->waits;
  if (waits != nullptr) {
    StopWaits(env);
    napi_async_destroy(waits->env, waits->context);
    napi_delete_reference(waits->env, waits->callback);
    napi_delete_reference(waits->env, waits->resource);
  }
#endif
  // A plain close, as the process's exit would do: a descriptor passed on
  // to a child (`instance-lock run`) keeps the child's lock.
  for (size_t fd = 0; fd < env->owned.size(); fd++) {
    if (env->owned[fd] != 0) close(static_cast<int>(fd));
  }
  env->owned.clear();
#if IL_LINUX
  if (waits != nullptr) {
    waits->closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(waits->async), OnAsyncClosed);
    return;
  }
#endif
  napi_remove_async_cleanup_hook(handle);
  delete env;
}

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
  exports.Set("waitInit", Napi::Function::New(env, WaitInit, "waitInit"));
  exports.Set("waitStart", Napi::Function::New(env, WaitStart, "waitStart"));
  exports.Set("waitCancel", Napi::Function::New(env, WaitCancel, "waitCancel"));
#endif
}

}  // namespace instance_lock
