// Facts for the holder records, and the machine-scope record directory.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

#include <knownfolders.h>
#include <sddl.h>
#include <shlobj.h>

#include "common.h"

namespace instance_lock {

namespace {

// Machine scope holder records: any user who takes the lock must be able to
// replace and remove the record the previous holder (maybe another user)
// left. Protected, so ProgramData's CREATOR OWNER rules are not inherited.
const wchar_t kSharedDirSddl[] = L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;0x1301BF;;;WD)";

PSECURITY_DESCRIPTOR g_dir_sd = nullptr;

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
  if (!info[0].IsString()) return ThrowType(env, "knownFolder(which: string)");
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
  if (!IsUint32(info[0])) return ThrowType(env, "processStartTime(pid)");
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
  if (!IsUint32(info[0]) || !info[1].IsString()) return ThrowType(env, "terminate(pid, startTime: string)");
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
  if (!info[0].IsString()) return ThrowType(env, "makeSharedDir(path: string)");
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

void RegisterFacts(Napi::Env env, Napi::Object exports) {
  exports.Set("userSid", Napi::Function::New(env, UserSid, "userSid"));
  exports.Set("knownFolder", Napi::Function::New(env, KnownFolder, "knownFolder"));
  exports.Set("processStartTime", Napi::Function::New(env, ProcessStartTime, "processStartTime"));
  exports.Set("terminate", Napi::Function::New(env, Terminate, "terminate"));
  exports.Set("makeSharedDir", Napi::Function::New(env, MakeSharedDir, "makeSharedDir"));
}

}  // namespace instance_lock
