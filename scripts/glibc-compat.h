// Force-included (gcc -include) into the Linux prebuilds by scripts/prebuild.mjs.
//
// glibc 2.33 turned stat/fstat/lstat/fstatat into real exported functions
// (symbol version GLIBC_2.33); before that the headers inlined them as calls
// to __xstat & co. An addon compiled against a newer glibc therefore refuses
// to load on the glibc 2.28 systems that Node 20's own binaries support
// ("version `GLIBC_2.33' not found"). glibc still exports the old entry
// points under their original versions, so bind the calls to those.
// glibc 2.34 moved libpthread into libc and gave the moved functions new
// versions (GLIBC_2.34) as well; the old ones remain, and on an older glibc
// the dynamic linker finds them in libpthread, which Node itself loads.
// Builds from source at install time don't use this: they match their glibc.
#pragma once

#if defined(__linux__)
#include <dlfcn.h>
#include <pthread.h>
#include <sys/stat.h>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))

// The versions glibc exports them under (objdump -T libc.so.6).
#if defined(__x86_64__)
#define INSTANCE_LOCK_XSTAT_VERSION "GLIBC_2.2.5"
#define INSTANCE_LOCK_FXSTATAT_VERSION "GLIBC_2.4"
#define INSTANCE_LOCK_STAT_VER 1  // _STAT_VER_LINUX
#define INSTANCE_LOCK_PTHREAD_VERSION "GLIBC_2.2.5"
#elif defined(__aarch64__)
#define INSTANCE_LOCK_XSTAT_VERSION "GLIBC_2.17"
#define INSTANCE_LOCK_FXSTATAT_VERSION "GLIBC_2.17"
#define INSTANCE_LOCK_STAT_VER 0  // _STAT_VER_KERNEL
#define INSTANCE_LOCK_PTHREAD_VERSION "GLIBC_2.17"
#else
#error "glibc-compat.h: unknown architecture; add its symbol versions and _STAT_VER"
#endif

extern "C" {
int __xstat(int ver, const char* path, struct stat* st);
int __lxstat(int ver, const char* path, struct stat* st);
int __fxstat(int ver, int fd, struct stat* st);
int __fxstatat(int ver, int dirfd, const char* path, struct stat* st, int flags);
}
__asm__(".symver __xstat,__xstat@" INSTANCE_LOCK_XSTAT_VERSION);
__asm__(".symver __lxstat,__lxstat@" INSTANCE_LOCK_XSTAT_VERSION);
__asm__(".symver __fxstat,__fxstat@" INSTANCE_LOCK_XSTAT_VERSION);
__asm__(".symver __fxstatat,__fxstatat@" INSTANCE_LOCK_FXSTATAT_VERSION);

__asm__(".symver pthread_create,pthread_create@" INSTANCE_LOCK_PTHREAD_VERSION);
__asm__(".symver pthread_attr_setstacksize,pthread_attr_setstacksize@" INSTANCE_LOCK_PTHREAD_VERSION);
__asm__(".symver pthread_sigmask,pthread_sigmask@" INSTANCE_LOCK_PTHREAD_VERSION);
__asm__(".symver pthread_kill,pthread_kill@" INSTANCE_LOCK_PTHREAD_VERSION);
// Moved from libdl into libc in 2.34 too; Node itself loads libdl.
__asm__(".symver dlopen,dlopen@" INSTANCE_LOCK_PTHREAD_VERSION);
__asm__(".symver dladdr,dladdr@" INSTANCE_LOCK_PTHREAD_VERSION);

static inline int instance_lock_stat(const char* path, struct stat* st) {
  return __xstat(INSTANCE_LOCK_STAT_VER, path, st);
}
static inline int instance_lock_lstat(const char* path, struct stat* st) {
  return __lxstat(INSTANCE_LOCK_STAT_VER, path, st);
}
static inline int instance_lock_fstat(int fd, struct stat* st) { return __fxstat(INSTANCE_LOCK_STAT_VER, fd, st); }
static inline int instance_lock_fstatat(int dirfd, const char* path, struct stat* st, int flags) {
  return __fxstatat(INSTANCE_LOCK_STAT_VER, dirfd, path, st, flags);
}

// Function-like, so `struct stat` is untouched; <sys/stat.h> is already
// included above and its include guard keeps its declarations from being
// expanded later.
#define stat(path, st) instance_lock_stat(path, st)
#define lstat(path, st) instance_lock_lstat(path, st)
#define fstat(fd, st) instance_lock_fstat(fd, st)
#define fstatat(dirfd, path, st, flags) instance_lock_fstatat(dirfd, path, st, flags)

#endif
#endif
