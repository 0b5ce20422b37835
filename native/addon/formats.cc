// formatOf(path): which reader of the format registry (native/formats/registry.cc) claims a file.
#include "../formats/reader.h"
#include "exports.h"

namespace mother_addon {

Napi::Value FormatOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "path must be a string");
  const mother::Reader* r = mother::claiming_reader(info[0].As<Napi::String>().Utf8Value());
  return r ? Napi::Value(Napi::String::New(env, r->format)) : env.Null();
}

}  // namespace mother_addon
