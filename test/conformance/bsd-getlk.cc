// F_GETLK as macOS and the BSDs answer it, for the addon's portable build on
// Linux (scripts/build-portable.mjs), whose probe asks F_GETLK whether a lock
// file is held, as it does there.
//
// Those systems keep flock and fcntl locks in one table: F_GETLK reports a
// flock lock of any other open file (even one of the caller's own process)
// and takes nothing. Linux keeps them apart and its F_GETLK never sees a
// flock, so this asks the kernel's F_GETLK first (fcntl locks) and then looks
// for a flock lock on the file in the kernel's own list of locks,
// /proc/locks, taking nothing either. That list leaves out, in a PID
// namespace other than the first, a flock whose taker has exited while a
// descriptor it passed on keeps the lock: the conformance scenarios never
// pass one on.
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

int InstanceLockBsdGetLk(int fd, struct flock* fl) {
  if (fcntl(fd, F_GETLK, fl) != 0) return -1;
  if (fl->l_type != F_UNLCK) return 0;
  struct stat st;
  if (fstat(fd, &st) != 0) return -1;
  // How /proc/locks names the file: "MAJOR:MINOR:INODE", hex, hex, decimal.
  char file[64];
  snprintf(file, sizeof file, "%02x:%02x:%llu", major(st.st_dev), minor(st.st_dev),
           static_cast<unsigned long long>(st.st_ino));
  FILE* locks = fopen("/proc/locks", "re");
  if (locks == nullptr) return -1;
  char line[512];
  while (fgets(line, sizeof line, locks) != nullptr) {
    // "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF". A process blocked
    // in flock shows as "1: -> FLOCK ...": it holds nothing, and its "->"
    // is not a lock class.
    char kind[16], access[16], where[64];
    if (sscanf(line, "%*d: %15s %*s %15s %*d %63s", kind, access, where) != 3) continue;
    if (strcmp(kind, "FLOCK") != 0 || strcmp(where, file) != 0) continue;
    fl->l_type = strcmp(access, "WRITE") == 0 ? F_WRLCK : F_RDLCK;
    fl->l_whence = SEEK_SET;
    fl->l_start = 0;
    fl->l_len = 0;
    fl->l_pid = -1;  // FreeBSD's answer for a flock: it belongs to no process
    break;
  }
  fclose(locks);
  return 0;
}
