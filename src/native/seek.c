// lseek with SEEK_DATA and SEEK_HOLE, which Node's fs lacks: where a sparse
// file's data and holes lie, so readers skip holes without reading them.
// Syscall plumbing only; src/util/sparse.ts turns answers into data runs.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "addon.h"
#include <errno.h>
#include <unistd.h>
#include <sys/types.h>

// seekData(fd, offset) / seekHole(fd, offset): the offset lseek returns, -1
// when there is no data at or after `offset` (ENXIO), and -2 when the
// platform or file system cannot tell (no SEEK_DATA, EINVAL): the caller then
// treats the whole file as data.
static napi_value do_seek(napi_env env, napi_callback_info info, int whence) {
  napi_value out;
  double a[2];
  if (!number_args(env, info, 2, a, "seek(fd, offset)")) return NULL;
  int fd = (int)a[0];
  off_t at = (off_t)a[1];
  double r = -2;
  if (whence >= 0) {
    off_t got = lseek(fd, at, whence);
    if (got >= 0) r = (double)got;
    else if (errno == ENXIO) r = -1;
    else if (errno != EINVAL && errno != ENOTSUP) return throw_errno(env, errno, "(seek)");
  }
  napi_create_double(env, r, &out);
  return out;
}

#ifdef SEEK_DATA
#define WHENCE_DATA SEEK_DATA
#define WHENCE_HOLE SEEK_HOLE
#else
#define WHENCE_DATA -1
#define WHENCE_HOLE -1
#endif

static napi_value seek_data(napi_env env, napi_callback_info info) { return do_seek(env, info, WHENCE_DATA); }
static napi_value seek_hole(napi_env env, napi_callback_info info) { return do_seek(env, info, WHENCE_HOLE); }

void register_seek(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
    { "seekData", NULL, seek_data, NULL, NULL, NULL, napi_default, NULL },
    { "seekHole", NULL, seek_hole, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
}
