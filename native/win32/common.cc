// What the Windows primitives share: string and handle conversions, security
// descriptors, each environment's State, and Register.
#include "common.h"

#include <sddl.h>

#ifdef _MSC_VER
#pragma comment(lib, "advapi32.lib")
#pragma comment(lib, "ole32.lib")
#pragma comment(lib, "shell32.lib")
#pragma comment(lib, "uuid.lib")
#endif

namespace instance_lock {

const char* const kPlatform = "win32";

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

namespace {

void ReleaseOwned(void* arg) {
  State* s = static_cast<State*>(arg);
  for (HANDLE h : s->owned) {
    ReleaseMutex(h);
    CloseHandle(h);
  }
  s->owned.clear();
}

}  // namespace

State* GetState(Napi::Env env) {
  State* s = env.GetInstanceData<State>();
  if (s == nullptr) {
    s = new State();
    env.SetInstanceData<State>(s);
    napi_add_env_cleanup_hook(env, ReleaseOwned, s);
  }
  return s;
}

void Register(Napi::Env env, Napi::Object exports) {
  RegisterMutex(env, exports);
  RegisterWaiter(env, exports);
  RegisterFacts(env, exports);
  RegisterPipe(env, exports);
}

}  // namespace instance_lock
