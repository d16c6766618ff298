// Entry point: each platform file registers its primitives on `exports`.
// Everything the addon exports is a small primitive; policy lives in src/.
#include <napi.h>

#include "platform.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("platform", Napi::String::New(env, instance_lock::kPlatform));
  instance_lock::Register(env, exports);
  return exports;
}

NODE_API_MODULE(instance_lock, Init)
