// Core errors on their way to JS: captured on the worker thread (ErrorInfo), made into a JS
// Error carrying { code, file, tensor } on the main thread.
#pragma once
#include <napi.h>

#include <exception>
#include <string>

#include "../core/error.h"

namespace mother_addon {

struct ErrorInfo {
  std::string code, file, tensor, message;
};

ErrorInfo to_info(const mother::Error& e);
Napi::Error make_error(Napi::Env env, const ErrorInfo& info);
// Throws e as that JS Error (for core errors raised on the main thread).
[[noreturn]] void throw_js(Napi::Env env, const mother::Error& e);

// Runs fn and records what it threw: core errors keep their code, file and tensor; anything
// else (bad_alloc, ...) becomes ERR_INTERNAL. Returns false on error.
template <typename Fn>
bool capture(Fn&& fn, ErrorInfo* info) {
  try {
    fn();
    return true;
  } catch (const mother::Error& e) {
    *info = to_info(e);
  } catch (const std::exception& e) {
    *info = ErrorInfo{mother::error_code_name(mother::ErrorCode::Internal), "", "", e.what()};
  }
  return false;
}

}  // namespace mother_addon
