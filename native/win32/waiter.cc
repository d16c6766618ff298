// Waiting. One thread per waiting lock(): it waits on [stop, mutex]; once it
// owns the mutex it reports through a thread-safe function and keeps owning
// it until waitStop() signals `stop`, then releases it and exits. The
// thread-safe function is referenced until the thread's one report, so a
// pending lock() keeps the process alive and a settled one does not.
#include "common.h"

namespace instance_lock {

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

namespace {

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
  if (!info[0].IsString() || !info[1].IsBoolean() || !info[2].IsFunction())
    return ThrowType(env, "waitStart(name: string, machine: boolean, callback: function)");
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
  if (!IsUint32(info[0])) return ThrowType(env, "waitStop(id)");
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

}  // namespace

void RegisterWaiter(Napi::Env env, Napi::Object exports) {
  exports.Set("waitStart", Napi::Function::New(env, WaitStart, "waitStart"));
  exports.Set("waitStop", Napi::Function::New(env, WaitStop, "waitStop"));
}

}  // namespace instance_lock
