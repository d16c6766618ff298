#ifndef INSTANCE_LOCK_ARGS_H_
#define INSTANCE_LOCK_ARGS_H_

// The checks every exported function makes of its arguments before it reads
// any of them: src/ is their only caller, so a wrong call is a bug there, and
// it gets a TypeError naming the expected signature, never a descriptor,
// mode or handle read from garbage (node-addon-api's conversions of a value
// of the wrong type yield 0 after queueing a plain Error, and the call would
// go on with that 0: flock on stdin, close of descriptor 0).
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

namespace instance_lock {

// Throws TypeError("instance-lock addon: expected <signature>"), with code
// ERR_INVALID_ARG_TYPE as Node's own argument checks have; returns
// undefined for the caller to return.
inline Napi::Value ThrowType(Napi::Env env, const char* signature) {
  Napi::TypeError e = Napi::TypeError::New(env, std::string("instance-lock addon: expected ") + signature);
  e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

// A number that is an integer within [min, max].
inline bool IsInteger(const Napi::Value& v, double min, double max) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  return std::trunc(d) == d && d >= min && d <= max;
}

// A descriptor: an int32 that is not negative.
inline bool IsFd(const Napi::Value& v) { return IsInteger(v, 0, INT32_MAX); }

// An id, a pid on Windows.
inline bool IsUint32(const Napi::Value& v) { return IsInteger(v, 0, UINT32_MAX); }

inline bool IsStringOrNull(const Napi::Value& v) { return v.IsString() || v.IsNull(); }

}  // namespace instance_lock

#endif
