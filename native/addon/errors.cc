#include "errors.h"

namespace mother_addon {

ErrorInfo to_info(const mother::Error& e) {
  return ErrorInfo{mother::error_code_name(e.code()), e.file(), e.tensor(), e.what()};
}

Napi::Error make_error(Napi::Env env, const ErrorInfo& info) {
  Napi::Error err = Napi::Error::New(env, info.message);
  err.Set("code", Napi::String::New(env, info.code));
  if (!info.file.empty()) err.Set("file", Napi::String::New(env, info.file));
  if (!info.tensor.empty()) err.Set("tensor", Napi::String::New(env, info.tensor));
  return err;
}

void throw_js(Napi::Env env, const mother::Error& e) { throw make_error(env, to_info(e)); }

}  // namespace mother_addon
