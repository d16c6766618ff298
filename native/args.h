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

// The same checks, reading the value in the one Node-API call that also
// tells its type: on the paths every lock and release takes, a separate
// type check and read per argument cost about a tenth of a cycle.
inline bool GetInteger(napi_env env, napi_value v, double min, double max, int64_t* out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || std::trunc(d) != d || d < min || d > max) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

inline bool GetFd(napi_env env, napi_value v, int* out) {
  int64_t n;
  if (!GetInteger(env, v, 0, INT32_MAX, &n)) return false;
  *out = static_cast<int>(n);
  return true;
}

inline bool GetBool(napi_env env, napi_value v, bool* out) { return napi_get_value_bool(env, v, out) == napi_ok; }

}  // namespace instance_lock

#endif
