#ifndef INSTANCE_LOCK_POSIX_LOCKFILE_H_
#define INSTANCE_LOCK_POSIX_LOCKFILE_H_

// The lock file: opening it safely, checking what it is, flocking it and
// proving afterwards that the descriptor still names it.
#include <fcntl.h>
#include <sys/types.h>

namespace instance_lock {

// O_NOFOLLOW: a symlink planted at the lock path is never followed.
// O_CLOEXEC: a child process never inherits the lock by accident.
// O_NONBLOCK: a FIFO planted at the lock path cannot make open() hang.
constexpr int kOpenFlags = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;

// What the protocol needs to know of a file: which one it is, its type, its
// links, its owner and mode.
struct FileId {
  dev_t dev;
  ino_t ino;
  mode_t mode;
  nlink_t nlink;
  uid_t uid;
};

struct OpenResult {
  int fd = -1;
  int err = 0;
  const char* syscall = "open";
  bool writable = false;
  FileId id;  // of the opened file: its dev/ino never change
};

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

enum LockState { kAcquired = 0, kHeld = 1, kStale = 2 };

int OpenRetry(int dirfd, const char* name, int flags, mode_t mode);
int FlockRetry(int fd, int op);

int IdentityOfFd(int fd, FileId* id);

OpenResult OpenLockFileUnchecked(int dirfd, const char* name, mode_t mode);
// OpenLockFileUnchecked, then the checks of a lock file (CheckFile).
OpenResult OpenLockFile(int dirfd, const char* name, mode_t mode, int checks);

bool NoLongerNamed(const FileId& own, int dirfd, const char* name, int checks);
int VerifyLocked(int fd, int dirfd, const char* name, mode_t mode, int checks, int* err, const char** syscall);
void SetIndicator(int fd, bool writable);
int LockFd(int fd, int dirfd, const char* name, mode_t mode, int checks, int* err, const char** syscall);
bool Orphaned(int fd, int dirfd, const char* name, int checks);

void UnlockFd(int fd);
void ReleaseFd(int fd);

}  // namespace instance_lock

#endif
