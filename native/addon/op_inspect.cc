// inspect(files: string[], index: string) => Promise<RawInspect>: the headers only.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "../formats/reader.h"
#include "args.h"
#include "exports.h"
#include "promise_worker.h"

namespace mother_addon {

namespace {

struct InspectOp {
  std::vector<std::string> files;
  std::string index;
  mother::Model model;

  void run(ProgressChannel&) { model = mother::open_model(files, index); }

  Napi::Value toJs(Napi::Env env) const {
    Napi::Object out = Napi::Object::New(env);
    Napi::Array fs = Napi::Array::New(env, model.files.size());
    for (size_t i = 0; i < model.files.size(); ++i) {
      const auto& f = model.files[i];
      Napi::Object fo = Napi::Object::New(env);
      fo.Set("path", f.path());
      fo.Set("format", f.format);
      fo.Set("size", Napi::Number::New(env, static_cast<double>(f.map->size())));
      fo.Set("headerBytes", Napi::Number::New(env, static_cast<double>(f.header_bytes)));
      Napi::Object meta = Napi::Object::New(env);
      // napi strings keep embedded NULs; DefineProperty keeps "__proto__" an own data property
      for (const auto& kv : f.metadata)
        meta.DefineProperty(Napi::PropertyDescriptor::Value(Napi::String::New(env, kv.first), Napi::String::New(env, kv.second),
                                                            napi_default_jsproperty));
      fo.Set("metadata", meta);
      fs.Set(i, fo);
    }
    out.Set("files", fs);
    Napi::Array tensors = Napi::Array::New(env, model.tensors.size());
    for (size_t i = 0; i < model.tensors.size(); ++i) {
      const auto& t = model.tensors[i];
      Napi::Object to = Napi::Object::New(env);
      to.Set("name", t.name);
      to.Set("dtype", mother::view_dtype_name(t));
      to.Set("shape", number_array(env, t.shape));
      to.Set("file", Napi::Number::New(env, t.file));
      to.Set("offset", Napi::Number::New(env, static_cast<double>(t.offset)));
      to.Set("bytes", Napi::Number::New(env, static_cast<double>(t.bytes)));
      if (!t.unreadable.empty()) to.Set("unreadable", t.unreadable);
      // values the reader decoded (ONNX varint fields): offset is in the decoded copy, not the file
      if (t.map != model.files[t.file].map.get()) to.Set("decoded", true);
      // an affine quantised view (ONNX NAME_quantized x NAME_scale - NAME_zero_point): offset and
      // bytes are those of the quantised data; the scale and zero point tensors are not listed
      if (t.affine) {
        Napi::Object q = Napi::Object::New(env);
        q.Set("data", t.affine->data_name);
        q.Set("scale", t.affine->scale_name);
        q.Set("zeroPoint", t.affine->zero_name);
        q.Set("axis", t.affine->axis < 0 ? env.Null() : Napi::Value(Napi::Number::New(env, static_cast<double>(t.affine->axis))));
        q.Set("channels", Napi::Number::New(env, static_cast<double>(t.affine->scale.size())));
        // the RMS of round-to-nearest's error on this grid, sqrt(mean(scale^2) / 12) (every
        // channel holds as many elements): how far a quantised copy lies from its float source
        double ms = 0;
        for (double s : t.affine->scale) ms += s * s;
        ms /= static_cast<double>(t.affine->scale.empty() ? 1 : t.affine->scale.size());
        q.Set("roundingRms", Napi::Number::New(env, std::sqrt(ms / 12.0)));
        to.Set("dequantized", q);
      }
      tensors.Set(i, to);
    }
    out.Set("tensors", tensors);
    return out;
  }
};

}  // namespace

Napi::Value Inspect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto files = string_array(info[0], "files");
  if (!info[1].IsString()) throw Napi::TypeError::New(env, "index must be a string");
  return PromiseWorker<InspectOp>::start(env, "mother.inspect", InspectOp{std::move(files), info[1].As<Napi::String>().Utf8Value()});
}

}  // namespace mother_addon
