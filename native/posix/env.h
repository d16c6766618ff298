#ifndef INSTANCE_LOCK_POSIX_ENV_H_
#define INSTANCE_LOCK_POSIX_ENV_H_

#include <napi.h>

#include <cstdint>
#include <vector>

namespace instance_lock {

struct Waits;

// What one Node environment (the main thread, or a Worker) has of the
// addon: the descriptors it was handed (lock files held, waited on or kept
// as spares; scope directories), and its blocking waits. When the
// environment ends, its waits are cancelled and its descriptors closed, so
// a Worker's locks and waits end with the Worker, as on Windows.
struct Env {
  std::vector<uint8_t> owned;  // by descriptor number: 1 when owned
  Waits* waits = nullptr;      // Linux, from the first blocking wait on
  napi_async_cleanup_hook_handle cleanup = nullptr;
};

// This environment's Env (the addon's instance data, set by Register).
Env* EnvOf(Napi::Env env);

// Marks `fd` as owned by `env` (closed when it ends); -1 is ignored.
void Track(Env* env, int fd);

void Untrack(Env* env, int fd);

// The async cleanup hook Register installs: ends the environment's waits and
// closes its descriptors.
void EndEnvironment(napi_async_cleanup_hook_handle handle, void* arg);

}  // namespace instance_lock

#endif
