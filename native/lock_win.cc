// Windows primitives: named mutexes with explicit ownership rules, a probe
// that never takes ownership, dedicated waiter threads, and the few system
// facts the holder records need (the user's SID, known folders, process
// creation times).
//
// Every call takes plain values and either returns a plain value or throws an
// Error carrying the Win32 error number as `errno`, plus `syscall` and
// `path`; src/win32.ts decides what any of it means.
//
// A mutex belongs to the thread that acquired it (ReleaseMutex from any other
// thread fails with ERROR_NOT_OWNER) and is recursive. So: tryLock acquires
// on the JS thread and release() runs there too; a waiting lock() gets a
// thread of its own that acquires, keeps owning until release() tells it to
// let go, and only then exits. Neither ever touches libuv's thread pool.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <knownfolders.h>
#include <sddl.h>
#include <shlobj.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include <napi.h>

#include "platform.h"

#ifdef _MSC_VER
#pragma comment(lib, "advapi32.lib")
#pragma comment(lib, "ole32.lib")
#pragma comment(lib, "shell32.lib")
#pragma comment(lib, "uuid.lib")
#endif

#ifndef MUTANT_QUERY_STATE
#define MUTANT_QUERY_STATE 0x0001
#endif

namespace instance_lock {

const char* const kPlatform = "win32";

namespace {

// SYNCHRONIZE to wait; MUTANT_QUERY_STATE (the same bit as
// MUTEX_MODIFY_STATE) to release and to query. Asking for no more than this
// is what lets another user open a machine-scope mutex we created: a plain
// CreateMutexW asks for MUTEX_ALL_ACCESS and would be refused.
constexpr DWORD kMutexAccess = SYNCHRONIZE | MUTANT_QUERY_STATE;

// Machine scope: SYSTEM and Administrators have full control; everyone,
// including AppContainer processes, may wait on, release and query it; a low
// mandatory label so low-integrity processes can open it too. Not observable
// under Wine, which has a single user and no integrity levels.
const wchar_t kMachineMutexSddl[] =
    L"D:(A;;0x1F0001;;;SY)(A;;0x1F0001;;;BA)(A;;0x100001;;;WD)(A;;0x100001;;;AC)S:(ML;;NW;;;LW)";

// Machine scope holder records: any user who takes the lock must be able to
// replace and remove the record the previous holder (maybe another user)
// left. Protected, so ProgramData's CREATOR OWNER rules are not inherited.
const wchar_t kSharedDirSddl[] = L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301BF;;;WD)";

std::wstring Wide(const std::string& s) {
  if (s.empty()) return std::wstring();
  int n = MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), nullptr, 0);
  std::wstring w(static_cast<size_t>(n), L'\0');
  MultiByteToWideChar(CP_UTF8, 0, s.data(), static_cast<int>(s.size()), &w[0], n);
  return w;
}

std::string Narrow(const wchar_t* w) {
  int n = WideCharToMultiByte(CP_UTF8, 0, w, -1, nullptr, 0, nullptr, nullptr);
  if (n <= 1) return std::string();
  std::string s(static_cast<size_t>(n - 1), '\0');
  WideCharToMultiByte(CP_UTF8, 0, w, -1, &s[0], n, nullptr, nullptr);
  return s;
}

HANDLE ToHandle(const Napi::Value& v) {
  return reinterpret_cast<HANDLE>(static_cast<uintptr_t>(v.As<Napi::Number>().Int64Value()));
}

Napi::Number FromHandle(Napi::Env env, HANDLE h) {
  return Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(h)));
}

// Built once, kept for the life of the process.
PSECURITY_DESCRIPTOR Descriptor(const wchar_t* sddl, PSECURITY_DESCRIPTOR* slot, DWORD* err) {
  if (*slot == nullptr) {
    PSECURITY_DESCRIPTOR sd = nullptr;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd, nullptr)) {
      *err = GetLastError();
      return nullptr;
    }
    if (InterlockedCompareExchangePointer(slot, sd, nullptr) != nullptr) LocalFree(sd);
  }
  return *slot;
}

PSECURITY_DESCRIPTOR g_mutex_sd = nullptr;
PSECURITY_DESCRIPTOR g_dir_sd = nullptr;

// Opens or creates the mutex without waiting on it. Returns 0 and the handle,
// or the Win32 error: ERROR_ACCESS_DENIED when another user's object has the
// name (anyone can create a name first; callers treat that as "held", never
// as a failure), ERROR_INVALID_HANDLE when the name belongs to another kind of
// object.
DWORD OpenLockMutex(const std::wstring& name, bool machine, HANDLE* out, bool* existed = nullptr) {
  SECURITY_ATTRIBUTES sa;
  sa.nLength = sizeof sa;
  // Never inherited: a child process must not keep the lock (or its object)
  // alive after we exit.
  sa.bInheritHandle = FALSE;
  sa.lpSecurityDescriptor = nullptr;
  if (machine) {
    DWORD err = 0;
    sa.lpSecurityDescriptor = Descriptor(kMachineMutexSddl, &g_mutex_sd, &err);
    if (sa.lpSecurityDescriptor == nullptr) return err;
  }
  HANDLE h = CreateMutexExW(&sa, name.c_str(), 0, kMutexAccess);
  if (h == nullptr) return GetLastError();
  if (existed != nullptr) *existed = GetLastError() == ERROR_ALREADY_EXISTS;
  *out = h;
  return 0;
}

// NtQueryMutant reads a mutex's state without waiting on it, so inspecting
// can never make a concurrent tryLock fail, as taking the mutex even briefly
// would. Nor can existence stand for ownership: an inspector or a waiter keeps
// the object alive after its owner has gone. Resolved at run time:
// it lives in ntdll and has no import library entry in every toolchain.
typedef LONG(NTAPI* NtQueryMutantFn)(HANDLE, int, PVOID, ULONG, PULONG);

struct MutantBasicInformation {
  LONG CurrentCount;  // 1: free; <= 0: owned (1 - recursion count)
  BOOLEAN OwnedByCaller;
  BOOLEAN AbandonedState;
};

struct MutantOwnerInformation {
  HANDLE UniqueProcess;
  HANDLE UniqueThread;
};

typedef ULONG(NTAPI* RtlNtStatusToDosErrorFn)(LONG);

FARPROC Ntdll(const char* fn) { return GetProcAddress(GetModuleHandleW(L"ntdll.dll"), fn); }

NtQueryMutantFn QueryMutant() {
  static NtQueryMutantFn fn = reinterpret_cast<NtQueryMutantFn>(reinterpret_cast<void*>(Ntdll("NtQueryMutant")));
  return fn;
}

DWORD DosError(LONG status) {
  static RtlNtStatusToDosErrorFn fn =
      reinterpret_cast<RtlNtStatusToDosErrorFn>(reinterpret_cast<void*>(Ntdll("RtlNtStatusToDosError")));
  return fn == nullptr ? ERROR_GEN_FAILURE : fn(status);
}

struct Waiter;

// Per environment (the main thread, each worker): the mutexes its JS thread
// owns, and its waiters. When a worker's environment goes away, what its
// thread owns is released and closed rather than left abandoned and leaked.
struct State {
  std::set<HANDLE> owned;
  std::map<uint32_t, Waiter*> waiters;
  uint32_t next = 1;
};

void ReleaseOwned(void* arg) {
  State* s = static_cast<State*>(arg);
  for (HANDLE h : s->owned) {
    ReleaseMutex(h);
    CloseHandle(h);
  }
  s->owned.clear();
}

State* GetState(Napi::Env env) {
  State* s = env.GetInstanceData<State>();
  if (s == nullptr) {
    s = new State();
    env.SetInstanceData<State>(s);
    napi_add_env_cleanup_hook(env, ReleaseOwned, s);
  }
  return s;
}

// acquire(name, machine) -> [handle, abandoned] | null (held)
// On the calling thread, which then owns the mutex: release() must run on it.
Napi::Value Acquire(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>();
  bool machine = info[1].As<Napi::Boolean>();
  HANDLE h = nullptr;
  bool existed = false;
  DWORD err = OpenLockMutex(Wide(name), machine, &h, &existed);
  if (err == ERROR_ACCESS_DENIED) return env.Null();
  if (err != 0) {
    ThrowSystemError(env, static_cast<int>(err), "CreateMutexExW", name);
    return env.Undefined();
  }
  // Mutexes are recursive: if this thread owns it already, the wait below
  // would succeed and hand out a second lock on it. src/ refuses a second
  // acquisition in this process before it gets here; this makes it hold even
  // for a handle src/ has not registered yet.
  NtQueryMutantFn query = QueryMutant();
  MutantBasicInformation basic = {};
  if (existed && query != nullptr && query(h, 0, &basic, sizeof basic, nullptr) >= 0 && basic.OwnedByCaller) {
    CloseHandle(h);
    return env.Null();
  }
  DWORD r = WaitForSingleObject(h, 0);
  if (r == WAIT_TIMEOUT) {
    CloseHandle(h);
    return env.Null();
  }
  if (r != WAIT_OBJECT_0 && r != WAIT_ABANDONED) {
    err = GetLastError();
    CloseHandle(h);
    ThrowSystemError(env, static_cast<int>(err), "WaitForSingleObject", name);
    return env.Undefined();
  }
  // WAIT_ABANDONED: the previous owner died holding it, and the kernel has
  // made it ours. Reported (as `recovered`), not an error.
  GetState(env)->owned.insert(h);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, FromHandle(env, h));
  out.Set(1u, Napi::Boolean::New(env, r == WAIT_ABANDONED));
  return out;
}

// release(handle): on the thread that acquired it.
Napi::Value Release(const Napi::CallbackInfo& info) {
  HANDLE h = ToHandle(info[0]);
  GetState(info.Env())->owned.erase(h);
  ReleaseMutex(h);
  CloseHandle(h);
  return info.Env().Undefined();
}

// probe(name) -> null (no such mutex) | [held, ownerPid (0: unknown)]
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>();
  NtQueryMutantFn query = QueryMutant();
  if (query == nullptr) {
    ThrowSystemError(env, ERROR_PROC_NOT_FOUND, "NtQueryMutant", name);
    return env.Undefined();
  }
  HANDLE h = OpenMutexW(kMutexAccess, FALSE, Wide(name).c_str());
  if (h == nullptr) {
    DWORD err = GetLastError();
    if (err == ERROR_FILE_NOT_FOUND) return env.Null();
    if (err == ERROR_ACCESS_DENIED) {
      // Someone else's object under our name: nobody we can see may take it.
      Napi::Array out = Napi::Array::New(env, 2);
      out.Set(0u, Napi::Boolean::New(env, true));
      out.Set(1u, Napi::Number::New(env, 0));
      return out;
    }
    ThrowSystemError(env, static_cast<int>(err), "OpenMutexW", name);
    return env.Undefined();
  }
  MutantBasicInformation basic = {};
  LONG status = query(h, 0, &basic, sizeof basic, nullptr);
  if (status < 0) {
    CloseHandle(h);
    ThrowSystemError(env, static_cast<int>(DosError(status)), "NtQueryMutant", name);
    return env.Undefined();
  }
  bool held = basic.CurrentCount <= 0;
  double owner = 0;
  if (held) {
    // The kernel knows the owning thread; newer Windows versions tell
    // (MutantOwnerInformation). Wine does not, and then the holder record,
    // verified against the process's creation time, is all there is.
    MutantOwnerInformation who = {};
    if (query(h, 1, &who, sizeof who, nullptr) >= 0)
      owner = static_cast<double>(reinterpret_cast<uintptr_t>(who.UniqueProcess));
  }
  CloseHandle(h);
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Boolean::New(env, held));
  out.Set(1u, Napi::Number::New(env, owner));
  return out;
}

// ---------------------------------------------------------------------------
// Waiting. One thread per waiting lock(): it waits on [stop, mutex]; once it
// owns the mutex it reports through a thread-safe function and keeps owning
// it until waitStop() signals `stop`, then releases it and exits. The
// thread-safe function is referenced until the thread's one report, so a
// pending lock() keeps the process alive and a settled one does not.

struct Waiter {
  State* state = nullptr;
  uint32_t id = 0;
  std::wstring name;
  bool machine = false;
  HANDLE mutex = nullptr;  // null: another user's object squats the name
  HANDLE stop = nullptr;   // manual-reset: cancel before, release after
  HANDLE thread = nullptr;
  napi_threadsafe_function tsfn = nullptr;
};

struct Report {
  int state;  // 0 acquired, 1 acquired after the owner died, 2 failed
  DWORD err;
};

// How often a waiter retries a name another user's object occupies: that
// object cannot be waited on, only outlived.
constexpr DWORD kSquatRetryMs = 100;

DWORD WINAPI WaitThread(void* arg) {
  Waiter* w = static_cast<Waiter*>(arg);
  Report rep = {2, 0};
  bool owned = false;
  bool cancelled = false;
  while (!owned && !cancelled && rep.err == 0) {
    if (w->mutex == nullptr) {
      if (WaitForSingleObject(w->stop, kSquatRetryMs) == WAIT_OBJECT_0) {
        cancelled = true;
        break;
      }
      DWORD err = OpenLockMutex(w->name, w->machine, &w->mutex);
      if (err == ERROR_ACCESS_DENIED) continue;
      if (err != 0) {
        rep.err = err;
        break;
      }
    }
    // `stop` first: when both are signalled, cancelling wins and the mutex
    // is not taken (a wait-any changes only the object that satisfied it).
    HANDLE objs[2] = {w->stop, w->mutex};
    DWORD r = WaitForMultipleObjects(2, objs, FALSE, INFINITE);
    if (r == WAIT_OBJECT_0) {
      cancelled = true;
    } else if (r == WAIT_OBJECT_0 + 1 || r == WAIT_ABANDONED_0 + 1) {
      owned = true;
      rep.state = r == WAIT_ABANDONED_0 + 1 ? 1 : 0;
    } else {
      rep.err = GetLastError();
    }
  }
  if (!cancelled) napi_call_threadsafe_function(w->tsfn, new Report(rep), napi_tsfn_nonblocking);
  napi_release_threadsafe_function(w->tsfn, napi_tsfn_release);
  if (owned) {
    WaitForSingleObject(w->stop, INFINITE);
    ReleaseMutex(w->mutex);
  }
  if (w->mutex != nullptr) CloseHandle(w->mutex);
  return 0;
}

void CallJs(napi_env env, napi_value cb, void*, void* data) {
  Report* rep = static_cast<Report*>(data);
  if (env != nullptr && cb != nullptr) {
    napi_value argv[2], undefined;
    napi_create_int32(env, rep->state, &argv[0]);
    napi_create_uint32(env, rep->err, &argv[1]);
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, cb, 2, argv, nullptr);
  }
  delete rep;
}

// Signals the thread and joins it: when this returns the mutex is released
// (or was never taken) and no thread or handle of this wait is left.
void StopWaiter(Waiter* w) {
  SetEvent(w->stop);
  WaitForSingleObject(w->thread, INFINITE);
  CloseHandle(w->thread);
  CloseHandle(w->stop);
  delete w;
}

// A worker's environment going away with a wait pending or a lock held by a
// waiter thread: release, so nothing outlives the environment. Registered
// after the thread-safe function's own hook, so it runs before it (hooks run
// in reverse order) and the thread is done with the function first.
void CleanupWaiter(void* arg) {
  Waiter* w = static_cast<Waiter*>(arg);
  w->state->waiters.erase(w->id);
  StopWaiter(w);
}

// waitStart(name, machine, callback(state, winerror)) -> id
Napi::Value WaitStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>();
  Waiter* w = new Waiter();
  w->name = Wide(name);
  w->machine = info[1].As<Napi::Boolean>();
  // The first open happens here, so a bad name fails synchronously.
  DWORD err = OpenLockMutex(w->name, w->machine, &w->mutex);
  if (err != 0 && err != ERROR_ACCESS_DENIED) {
    delete w;
    ThrowSystemError(env, static_cast<int>(err), "CreateMutexExW", name);
    return env.Undefined();
  }
  w->stop = CreateEventW(nullptr, TRUE, FALSE, nullptr);
  if (w->stop == nullptr) {
    err = GetLastError();
    if (w->mutex != nullptr) CloseHandle(w->mutex);
    delete w;
    ThrowSystemError(env, static_cast<int>(err), "CreateEventW", name);
    return env.Undefined();
  }
  napi_value resource_name;
  napi_create_string_utf8(env, "instance-lock:wait", NAPI_AUTO_LENGTH, &resource_name);
  napi_status st = napi_create_threadsafe_function(env, info[2], nullptr, resource_name, 0, 1, nullptr, nullptr,
                                                   nullptr, CallJs, &w->tsfn);
  if (st != napi_ok) {
    CloseHandle(w->stop);
    if (w->mutex != nullptr) CloseHandle(w->mutex);
    delete w;
    Napi::Error::New(env, "napi_create_threadsafe_function failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  w->thread = CreateThread(nullptr, 64 * 1024, WaitThread, w, STACK_SIZE_PARAM_IS_A_RESERVATION, nullptr);
  if (w->thread == nullptr) {
    err = GetLastError();
    napi_release_threadsafe_function(w->tsfn, napi_tsfn_abort);
    CloseHandle(w->stop);
    if (w->mutex != nullptr) CloseHandle(w->mutex);
    delete w;
    ThrowSystemError(env, static_cast<int>(err), "CreateThread", name);
    return env.Undefined();
  }
  w->state = GetState(env);
  w->id = w->state->next++;
  w->state->waiters[w->id] = w;
  napi_add_env_cleanup_hook(env, CleanupWaiter, w);
  return Napi::Number::New(env, w->id);
}

// waitStop(id): cancels a pending wait or releases what it acquired.
// Idempotent.
Napi::Value WaitStop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  State* state = GetState(env);
  auto it = state->waiters.find(info[0].As<Napi::Number>().Uint32Value());
  if (it != state->waiters.end()) {
    Waiter* w = it->second;
    state->waiters.erase(it);
    napi_remove_env_cleanup_hook(env, CleanupWaiter, w);
    StopWaiter(w);
  }
  return env.Undefined();
}

// ---------------------------------------------------------------------------
// Facts for the holder records.

// userSid() -> "S-1-5-21-…": part of every user-scope mutex name, so another
// user in the same session cannot create our name first and so squat it.
Napi::Value UserSid(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  HANDLE token = nullptr;
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &token)) {
    ThrowSystemError(env, static_cast<int>(GetLastError()), "OpenProcessToken", "");
    return env.Undefined();
  }
  DWORD len = 0;
  GetTokenInformation(token, TokenUser, nullptr, 0, &len);
  std::string buf(len, '\0');
  wchar_t* sid = nullptr;
  if (!GetTokenInformation(token, TokenUser, &buf[0], len, &len) ||
      !ConvertSidToStringSidW(reinterpret_cast<TOKEN_USER*>(&buf[0])->User.Sid, &sid)) {
    DWORD err = GetLastError();
    CloseHandle(token);
    ThrowSystemError(env, static_cast<int>(err), "GetTokenInformation", "");
    return env.Undefined();
  }
  CloseHandle(token);
  std::string out = Narrow(sid);
  LocalFree(sid);
  return Napi::String::New(env, out);
}

// knownFolder('LocalAppData' | 'ProgramData') -> path. From the shell, never
// from %LOCALAPPDATA% / %ProgramData%, which a service, a scheduled task or
// a caller's environment can set differently for the same user: a holder
// would then write its record where the other processes of that user never
// look, and they would show the lock as held by nobody they can name.
Napi::Value KnownFolder(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string which = info[0].As<Napi::String>();
  const KNOWNFOLDERID& id = which == "ProgramData" ? FOLDERID_ProgramData : FOLDERID_LocalAppData;
  wchar_t* path = nullptr;
  HRESULT hr = SHGetKnownFolderPath(id, KF_FLAG_DONT_VERIFY, nullptr, &path);
  if (FAILED(hr)) {
    CoTaskMemFree(path);
    ThrowSystemError(env, static_cast<int>(HRESULT_CODE(hr)), "SHGetKnownFolderPath", which);
    return env.Undefined();
  }
  std::string out = Narrow(path);
  CoTaskMemFree(path);
  return Napi::String::New(env, out);
}

// Opens a live process: null when it does not exist or has exited; sets
// *denied when it exists but we may not look at it (another user's).
HANDLE OpenLiveProcess(DWORD pid, DWORD extra, bool* denied) {
  *denied = false;
  HANDLE p = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE | extra, FALSE, pid);
  if (p == nullptr) {
    *denied = GetLastError() == ERROR_ACCESS_DENIED;
    return nullptr;
  }
  // A process that exited is still openable while anyone holds a handle.
  if (WaitForSingleObject(p, 0) != WAIT_TIMEOUT) {
    CloseHandle(p);
    return nullptr;
  }
  return p;
}

std::string CreationTime(HANDLE p) {
  FILETIME created, exited, kernel, user;
  if (!GetProcessTimes(p, &created, &exited, &kernel, &user)) return std::string();
  uint64_t t = (static_cast<uint64_t>(created.dwHighDateTime) << 32) | created.dwLowDateTime;
  return std::to_string(t);
}

// processStartTime(pid) -> creation time (100 ns since 1601, decimal) |
// null (no such live process) | false (alive, but not ours to query).
// A pid alone is not an identity: pids are reused at once on Windows.
Napi::Value ProcessStartTime(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool denied = false;
  HANDLE p = OpenLiveProcess(info[0].As<Napi::Number>().Uint32Value(), 0, &denied);
  if (p == nullptr) return denied ? Napi::Boolean::New(env, false) : env.Null();
  std::string t = CreationTime(p);
  CloseHandle(p);
  if (t.empty()) return Napi::Boolean::New(env, false);
  return Napi::String::New(env, t);
}

// terminate(pid, startTime) -> true when terminated. The creation time is
// checked on the handle that terminates, so a pid reused between the caller's
// verification and here is never hit.
Napi::Value Terminate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DWORD pid = info[0].As<Napi::Number>().Uint32Value();
  std::string expected = info[1].As<Napi::String>();
  bool denied = false;
  HANDLE p = OpenLiveProcess(pid, PROCESS_TERMINATE, &denied);
  if (p == nullptr) {
    if (denied) {
      ThrowSystemError(env, ERROR_ACCESS_DENIED, "OpenProcess", std::to_string(pid));
      return env.Undefined();
    }
    return Napi::Boolean::New(env, false);
  }
  if (CreationTime(p) != expected) {
    CloseHandle(p);
    return Napi::Boolean::New(env, false);
  }
  // Exit code 1, as Node's process.kill() on Windows.
  BOOL ok = TerminateProcess(p, 1);
  DWORD err = ok ? 0 : GetLastError();
  CloseHandle(p);
  if (!ok) {
    ThrowSystemError(env, static_cast<int>(err), "TerminateProcess", std::to_string(pid));
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

// makeSharedDir(path): creates the machine-scope record directory so that
// every user may replace and remove records in it. An existing directory is
// left as it is.
Napi::Value MakeSharedDir(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = info[0].As<Napi::String>();
  DWORD err = 0;
  SECURITY_ATTRIBUTES sa;
  sa.nLength = sizeof sa;
  sa.bInheritHandle = FALSE;
  sa.lpSecurityDescriptor = Descriptor(kSharedDirSddl, &g_dir_sd, &err);
  if (sa.lpSecurityDescriptor == nullptr) {
    ThrowSystemError(env, static_cast<int>(err), "ConvertStringSecurityDescriptorToSecurityDescriptorW", path);
    return env.Undefined();
  }
  if (!CreateDirectoryW(Wide(path).c_str(), &sa)) {
    err = GetLastError();
    if (err != ERROR_ALREADY_EXISTS) ThrowSystemError(env, static_cast<int>(err), "CreateDirectoryW", path);
  }
  return env.Undefined();
}

}  // namespace

void Register(Napi::Env env, Napi::Object exports) {
  exports.Set("acquire", Napi::Function::New(env, Acquire, "acquire"));
  exports.Set("release", Napi::Function::New(env, Release, "release"));
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
  exports.Set("waitStart", Napi::Function::New(env, WaitStart, "waitStart"));
  exports.Set("waitStop", Napi::Function::New(env, WaitStop, "waitStop"));
  exports.Set("userSid", Napi::Function::New(env, UserSid, "userSid"));
  exports.Set("knownFolder", Napi::Function::New(env, KnownFolder, "knownFolder"));
  exports.Set("processStartTime", Napi::Function::New(env, ProcessStartTime, "processStartTime"));
  exports.Set("terminate", Napi::Function::New(env, Terminate, "terminate"));
  exports.Set("makeSharedDir", Napi::Function::New(env, MakeSharedDir, "makeSharedDir"));
}

}  // namespace instance_lock
