#ifndef INSTANCE_LOCK_WIN32_COMMON_H_
#define INSTANCE_LOCK_WIN32_COMMON_H_

// Windows primitives: named mutexes with explicit ownership rules, a probe
// that never takes ownership, dedicated waiter threads, and the few system
// facts the holder records need (the user's SID, known folders, process
// creation times).
//
// Every call takes plain values and either returns a plain value or throws an
// Error carrying the Win32 error number as `errno`, plus `syscall` and
// `path`; src/backends/win32-mutex/index.ts decides what any of it means.
//
// A mutex belongs to the thread that acquired it (ReleaseMutex from any other
// thread fails with ERROR_NOT_OWNER) and is recursive. So: tryLock acquires
// on the JS thread and release() runs there too; a waiting lock() gets a
// thread of its own that acquires, keeps owning until release() tells it to
// let go, and only then exits. Neither ever touches libuv's thread pool.
//
// By concern: mutex.cc (acquire, release, probe), waiter.cc (waiter
// threads), process.cc (the facts for the holder records, and the shared
// record directory), pipe.cc (the message endpoint's server), common.cc (what
// they share, and Register).
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include <napi.h>

#include "../args.h"
#include "../platform.h"

#ifndef MUTANT_QUERY_STATE
#define MUTANT_QUERY_STATE 0x0001
#endif

namespace instance_lock {

std::wstring Wide(const std::string& s);
std::string Narrow(const wchar_t* w);

// A handle as src/ holds it: a number, never negative, exact in a double.
inline bool IsHandle(const Napi::Value& v) { return IsInteger(v, 0, 9007199254740991.0); }
HANDLE ToHandle(const Napi::Value& v);
Napi::Number FromHandle(Napi::Env env, HANDLE h);

PSECURITY_DESCRIPTOR Descriptor(const wchar_t* sddl, PSECURITY_DESCRIPTOR* slot, DWORD* err);

struct Waiter;
struct PipeServer;

// Per environment (the main thread, each worker): the mutexes its JS thread
// owns, its waiters, and its message endpoints' pipe servers. When a
// worker's environment goes away, what its thread owns is released and
// closed rather than left abandoned and leaked.
struct State {
  std::set<HANDLE> owned;
  std::map<uint32_t, Waiter*> waiters;
  std::map<uint32_t, PipeServer*> pipes;
  uint32_t next = 1;
};

State* GetState(Napi::Env env);

DWORD OpenLockMutex(const std::wstring& name, bool machine, HANDLE* out, bool* existed = nullptr);

void RegisterMutex(Napi::Env env, Napi::Object exports);
void RegisterWaiter(Napi::Env env, Napi::Object exports);
void RegisterFacts(Napi::Env env, Napi::Object exports);
void RegisterPipe(Napi::Env env, Napi::Object exports);

}  // namespace instance_lock

#endif
