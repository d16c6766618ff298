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

// sha256(text) -> hex digest of its UTF-8 bytes, as node:crypto's
// createHash('sha256').update(text).digest('hex').
static Napi::Value Sha256(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), instance_lock::Sha256Hex(info[0].As<Napi::String>()));
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("platform", Napi::String::New(env, instance_lock::kPlatform));
  exports.Set("sha256", Napi::Function::New(env, Sha256, "sha256"));
  instance_lock::Register(env, exports);
#if !defined(_WIN32)
  instance_lock::RegisterProcess(env, exports);
#endif
  return exports;
}

NODE_API_MODULE(instance_lock, Init)
