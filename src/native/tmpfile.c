#include "addon.h"

void register_tmpfile(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
}
