#ifndef INSTANCE_LOCK_POSIX_WAIT_H_
#define INSTANCE_LOCK_POSIX_WAIT_H_

// Waits that block on a thread of the addon's (Linux; see wait.cc).
#include <napi.h>

namespace instance_lock {

struct Env;

// Installs waitInit, waitStart and waitCancel.
void RegisterWaits(Napi::Env env, Napi::Object exports);

// The environment ends: cancels its waits and lets go of its callback.
// Nothing when it never waited.
void EndWaits(Env* env);

// Then, once its descriptors are closed: closes its async handle, whose
// close callback frees `env` and removes the cleanup hook. False when it has
// none (it never waited), and the caller frees `env` itself.
bool CloseWaits(Env* env);

}  // namespace instance_lock

#endif
