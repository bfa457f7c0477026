#include "addon.h"

void register_dirfd(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
}
