#include "progress.h"

namespace mother_addon {

void ProgressChannel::open(Napi::Env env, Napi::Function fn, const char* name) {
  tsfn_ = Napi::ThreadSafeFunction::New(env, fn, name, 0, 1);
  open_ = true;
}

void ProgressChannel::set_cancel(Napi::Int32Array flag) {
  cancel_ref_ = Napi::Persistent(flag);
  cancel_ = flag.Data();
}

void ProgressChannel::report(Fields fields, bool last) {
  auto now = std::chrono::steady_clock::now();
  if (!last && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  auto* msg = new Fields(std::move(fields));
  napi_status st = tsfn_.NonBlockingCall(msg, [](Napi::Env env, Napi::Function cb, Fields* f) {
    Napi::Object o = Napi::Object::New(env);
    for (const auto& kv : *f) o.Set(kv.first, Napi::Number::New(env, kv.second));
    delete f;
    cb.Call({o});
  });
  if (st != napi_ok) delete msg;
}

void ProgressChannel::close() {
  if (open_) {
    tsfn_.Release();
    open_ = false;
  }
}

}  // namespace mother_addon
