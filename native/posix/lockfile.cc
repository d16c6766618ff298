// The lock file: open, check, flock, verify, and the inspection indicator.
#include "lockfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#if defined(__linux__)
#include <sys/sysmacros.h>
#endif

#include "common.h"

namespace instance_lock {

namespace {

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

}  // namespace

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

namespace {

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

}  // namespace

OpenResult OpenLockFile(int dirfd, const char* name, mode_t mode, int checks) {
  OpenResult r = OpenLockFileUnchecked(dirfd, name, mode);
  if (r.fd >= 0) CheckLockFile(&r, mode, checks);
  return r;
}

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

// Whether the descriptor `fd` no longer names the lock file `name`, looked
// at without a lock held.
bool Orphaned(int fd, int dirfd, const char* name, int checks) {
  FileId own;
  return IdentityOfFd(fd, &own) != 0 || NoLongerNamed(own, dirfd, name, checks);
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

}  // namespace instance_lock
