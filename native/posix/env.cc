// Per environment: the descriptors it owns, and what happens when it ends.
#include "env.h"

#include <unistd.h>

#include "common.h"
#if IL_LINUX
#include "wait.h"
#endif

namespace instance_lock {

Env* EnvOf(Napi::Env env) {
  void* data = nullptr;
  napi_get_instance_data(env, &data);
  return static_cast<Env*>(data);
}

void Track(Env* env, int fd) {
  if (fd < 0) return;
  // Grown by push_back: resize() would make the Linux prebuilds need a
  // newer libstdc++ (__throw_bad_array_new_length) than Node 20 supports.
  while (env->owned.size() <= static_cast<size_t>(fd)) env->owned.push_back(0);
  env->owned[static_cast<size_t>(fd)] = 1;
}

void Untrack(Env* env, int fd) {
  if (fd >= 0 && static_cast<size_t>(fd) < env->owned.size()) env->owned[static_cast<size_t>(fd)] = 0;
}

// The environment ends (a Worker terminates or returns, or the process
// exits): its waits are cancelled (each returns once its thread has let go),
// every descriptor it still has is closed, which frees its locks, and its
// async handle is closed. Node waits for the handle's close callback before
// it finishes the environment and unloads the addon: a handle closed later
// would call into unmapped code.
void EndEnvironment(napi_async_cleanup_hook_handle handle, void* arg) {
  auto* env = static_cast<Env*>(arg);
  env->cleanup = handle;
#if IL_LINUX
  EndWaits(env);
#endif
  // A plain close, as the process's exit would do: a descriptor passed on
  // to a child (`instance-lock run`) keeps the child's lock.
  for (size_t fd = 0; fd < env->owned.size(); fd++) {
    if (env->owned[fd] != 0) close(static_cast<int>(fd));
  }
  env->owned.clear();
#if IL_LINUX
  if (CloseWaits(env)) return;
#endif
  napi_remove_async_cleanup_hook(handle);
  delete env;
}

}  // namespace instance_lock
