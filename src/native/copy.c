// copy_file_range, which Node's fs lacks: the emitter copies long runs of a
// source file into a file output inside the kernel (no read into a buffer and
// write back out; a reflink where the file system shares blocks). Syscall
// plumbing only; src/util/copy-range.ts decides when to use it.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "addon.h"
#include <errno.h>
#include <unistd.h>
#include <sys/types.h>

// copyFileRange(fdIn, offIn, fdOut, offOut, length): the bytes copied (0 at
// the input's end), or -2 when this kernel, file system or pair of files
// cannot (ENOSYS, EXDEV, EINVAL, EOPNOTSUPP, ...): the caller then reads and
// writes. Errors of the files themselves (EIO, ENOSPC, ...) throw.
static napi_value copy_file_range_js(napi_env env, napi_callback_info info) {
  napi_value out;
  double a[5];
  if (!number_args(env, info, 5, a, "copyFileRange(fdIn, offIn, fdOut, offOut, length)")) return NULL;
  double r = -2;
#if defined(__linux__)
  loff_t off_in = (loff_t)a[1];
  loff_t off_out = (loff_t)a[3];
  ssize_t got = copy_file_range((int)a[0], &off_in, (int)a[2], &off_out, (size_t)a[4], 0);
  if (got >= 0) r = (double)got;
  else if (errno == EIO || errno == ENOSPC || errno == EDQUOT || errno == EFBIG || errno == ENOMEM) return throw_errno(env, errno, "(copy_file_range)");
#endif
  napi_create_double(env, r, &out);
  return out;
}

void register_copy(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
    { "copyFileRange", NULL, copy_file_range_js, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
}
