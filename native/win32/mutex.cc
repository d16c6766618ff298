// The named mutex: opening or creating it, taking it without waiting,
// releasing it, and reading its state without taking it.
#include "common.h"

namespace instance_lock {

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

PSECURITY_DESCRIPTOR g_mutex_sd = nullptr;

}  // namespace

// Opens or creates the mutex without waiting on it. Returns 0 and the handle,
// or the Win32 error: ERROR_ACCESS_DENIED when another user's object has the
// name (anyone can create a name first; callers treat that as "held", never
// as a failure), ERROR_INVALID_HANDLE when the name belongs to another kind of
// object.
DWORD OpenLockMutex(const std::wstring& name, bool machine, HANDLE* out, bool* existed) {
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

namespace {

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

// acquire(name, machine) -> [handle, abandoned] | null (held)
// On the calling thread, which then owns the mutex: release() must run on it.
Napi::Value Acquire(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsBoolean()) return ThrowType(env, "acquire(name: string, machine: boolean)");
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
  if (!IsHandle(info[0])) return ThrowType(info.Env(), "release(handle)");
  HANDLE h = ToHandle(info[0]);
  GetState(info.Env())->owned.erase(h);
  ReleaseMutex(h);
  CloseHandle(h);
  return info.Env().Undefined();
}

// probe(name) -> null (no such mutex) | [held, ownerPid (0: unknown)]
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) return ThrowType(env, "probe(name: string)");
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

}  // namespace

void RegisterMutex(Napi::Env env, Napi::Object exports) {
  exports.Set("acquire", Napi::Function::New(env, Acquire, "acquire"));
  exports.Set("release", Napi::Function::New(env, Release, "release"));
  exports.Set("probe", Napi::Function::New(env, Probe, "probe"));
}

}  // namespace instance_lock
