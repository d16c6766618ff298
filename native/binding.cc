// Entry point: each platform file registers its primitives on `exports`.
// Everything the addon exports is a small primitive; policy lives in src/.
#include <napi.h>

#include "platform.h"

namespace instance_lock {

void ThrowSystemError(Napi::Env env, int err, const char* syscall, const std::string& path) {
  Napi::Error e = Napi::Error::New(env, std::string(syscall) + " failed");
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, syscall));
  if (!path.empty()) e.Set("path", Napi::String::New(env, path));
  e.ThrowAsJavaScriptException();
}

}  // namespace instance_lock

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("platform", Napi::String::New(env, instance_lock::kPlatform));
  instance_lock::Register(env, exports);
  return exports;
}

NODE_API_MODULE(instance_lock, Init)
