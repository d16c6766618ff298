// The floor: the same system calls as the locking protocols, with nothing
// around them, so every library's time can be read as a multiple of what the
// kernel itself costs on this machine in this run.
//
// Driven over stdin/stdout like the Node workers (one command per line, one
// JSON line back), so the bench can interleave it with them:
//   cycle min|protocol N   acquire + release N times, prints ns per cycle
//   fail  min|protocol N   N failed tries on a lock held through another open
//                          file description (flock conflicts between
//                          descriptions even in one process, as between
//                          processes), prints ns per try
// argv[1] is the directory of the lock file.
//
// floor-min:      open + flock(LOCK_EX|LOCK_NB) + close
// floor-protocol: what native/posix/lockfile.cc does for acquire + release in
//                 a loop, on a descriptor opened once
//                 (openat(O_RDWR|O_CREAT|O_CLOEXEC|O_NOFOLLOW|O_NONBLOCK);
//                 instance-lock keeps it from a release to the next
//                 acquisition in the same turn): flock, statx of the
//                 descriptor without timestamps (its link count is the
//                 re-check on ext4, where the bench runs), F_OFD_SETLK
//                 indicator, pwrite of the record at offset 0, F_UNLCK of
//                 the indicator, LOCK_UN; a failed try is openat, flock,
//                 pread, close.
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char* dir;
static int dirfd_;
static char path[4096];

// A holder record of the size instance-lock writes for an unkeyed lock.
static const char record[] =
    "IL1 00000080 6c1d3f0a\n"
    "{\"pid\":123456,\"hostname\":\"bench-host\",\"startedAt\":\"2025-01-01T00:00:00.000Z\","
    "\"name\":\"bench\",\"scope\":\"user\"}";

static void die(const char* what) {
  perror(what);
  exit(1);
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void cycle_min(void) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) die("open");
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) die("flock");
  close(fd);
}

// The descriptor instance-lock keeps from one release to the next
// acquisition within a turn of its event loop: opened once.
static int kept = -1;

static void cycle_protocol(void) {
  if (kept < 0) kept = openat(dirfd_, "floor.lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0666);
  if (kept < 0) die("openat");
  int fd = kept;
  struct statx sx;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) die("flock");
  if (statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_UID | STATX_INO, &sx) != 0 ||
      !S_ISREG(sx.stx_mode) || sx.stx_nlink != 1)
    die("statx");
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fcntl(fd, F_OFD_SETLK, &fl);
  if (pwrite(fd, record, sizeof record - 1, 0) != (ssize_t)(sizeof record - 1)) die("pwrite");
  fl.l_type = F_UNLCK;
  fcntl(fd, F_OFD_SETLK, &fl);
  flock(fd, LOCK_UN);
}

static void fail_min(void) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) die("open");
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) die("flock succeeded on a held lock");
  close(fd);
}

static void fail_protocol(void) {
  char buf[4096];
  int fd = openat(dirfd_, "floor.lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0666);
  if (fd < 0) die("openat");
  if (flock(fd, LOCK_EX | LOCK_NB) == 0) die("flock succeeded on a held lock");
  if (pread(fd, buf, sizeof buf, 0) < 0) die("pread");
  close(fd);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: floor DIR\n");
    return 2;
  }
  dir = argv[1];
  dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd_ < 0) die("open dir");
  snprintf(path, sizeof path, "%s/floor.lock", dir);
  // The protocol's record must be there for a failed try to read it.
  cycle_protocol();

  char line[256], op[16], variant[16];
  long n;
  setvbuf(stdout, NULL, _IOLBF, 0);
  while (fgets(line, sizeof line, stdin) != NULL) {
    if (sscanf(line, "%15s %15s %ld", op, variant, &n) != 3 || n <= 0) {
      printf("{\"error\":\"bad command\"}\n");
      continue;
    }
    int proto = strcmp(variant, "protocol") == 0;
    int holder = -1;
    if (strcmp(op, "fail") == 0) {
      holder = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (holder < 0 || flock(holder, LOCK_EX | LOCK_NB) != 0) die("holder");
    }
    void (*fn)(void) = holder >= 0 ? (proto ? fail_protocol : fail_min) : (proto ? cycle_protocol : cycle_min);
    double t0 = now_ns();
    for (long i = 0; i < n; i++) fn();
    double t1 = now_ns();
    if (holder >= 0) close(holder);
    printf("{\"ns\":%.1f}\n", (t1 - t0) / (double)n);
  }
  return 0;
}
