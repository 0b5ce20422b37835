// The lists the TypeScript side reads from the addon instead of keeping copies.
#include "../stats/summary.h"
#include "exports.h"

namespace mother_addon {

Napi::Value StatFields(Napi::Env env) { return Napi::Number::New(env, static_cast<double>(mother::kSummaryFields)); }

}  // namespace mother_addon
