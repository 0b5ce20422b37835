// An operation run off the event loop that settles a promise. The worker owns the deferred,
// the error and the progress channel (with the cancellation flag); the operation implements
//   void run(ProgressChannel&)      on a worker thread; may throw (see capture())
//   Napi::Value toJs(Napi::Env)     on the main thread: the value the promise resolves to
#pragma once
#include <napi.h>

#include <string>
#include <utility>

#include "errors.h"
#include "progress.h"

namespace mother_addon {

template <typename Op>
class PromiseWorker : public Napi::AsyncWorker {
 public:
  // Queues op under the async resource name `name`. on_progress: a function to report to
  // (reports are dropped otherwise); cancel: an Int32Array whose element 0 the caller sets to
  // cancel (ignored otherwise).
  static Napi::Promise start(Napi::Env env, const char* name, Op op, Napi::Value on_progress = Napi::Value(),
                             Napi::Value cancel = Napi::Value()) {
    auto* w = new PromiseWorker(env, name, std::move(op));
    if (!on_progress.IsEmpty() && on_progress.IsFunction())
      w->progress_.open(env, on_progress.As<Napi::Function>(), (std::string(name) + ".progress").c_str());
    if (!cancel.IsEmpty() && cancel.IsTypedArray() && cancel.As<Napi::TypedArray>().TypedArrayType() == napi_int32_array)
      w->progress_.set_cancel(cancel.As<Napi::Int32Array>());
    Napi::Promise p = w->deferred_.Promise();
    w->Queue();
    return p;
  }

 protected:
  void Execute() override {
    if (!capture([&] { op_.run(progress_); }, &error_)) SetError(error_.message);
  }
  void OnOK() override {
    progress_.close();
    deferred_.Resolve(op_.toJs(Env()));
  }
  void OnError(const Napi::Error&) override {
    progress_.close();
    deferred_.Reject(make_error(Env(), error_).Value());
  }

 private:
  PromiseWorker(Napi::Env env, const char* name, Op op)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), op_(std::move(op)) {}

  Napi::Promise::Deferred deferred_;
  Op op_;
  ProgressChannel progress_;
  ErrorInfo error_;
};

}  // namespace mother_addon
