#ifndef INSTANCE_LOCK_ARGS_H_
#define INSTANCE_LOCK_ARGS_H_

#include <napi.h>

#include <string>

namespace instance_lock {

// A call from src/ with arguments of the wrong types: a TypeError, never
// garbage read as a number.
inline Napi::Value ThrowType(Napi::Env env, const char* signature) {
  Napi::TypeError::New(env, std::string("instance-lock addon: expected ") + signature).ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace instance_lock

#endif
