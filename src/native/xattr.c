// Reads every extended attribute of a path without following symlinks, in one
// call, so the tree scan crosses into native code once per entry. Node has no
// xattr API; this is syscall plumbing only, all format work stays in TypeScript.
// What `diskwright extract` needs for writing a tree back (xattrs, mknod,
// exact utimensat, all relative to directory handles) is in dirfd.c.
#include "addon.h"
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>

#ifdef __APPLE__
#define LIST(p, b, n) listxattr(p, b, n, XATTR_NOFOLLOW)
#define GET(p, a, b, n) getxattr(p, a, b, n, 0, XATTR_NOFOLLOW)
#else
#define LIST(p, b, n) llistxattr(p, b, n)
#define GET(p, a, b, n) lgetxattr(p, a, b, n)
#endif

napi_value throw_errno(napi_env env, int err, const char *path) {
  napi_value code, msg, error, errnum;
  char text[4200];
  snprintf(text, sizeof text, "%s: %s", strerror(err), path);
  const char *name = err == ENOENT ? "ENOENT" : err == EACCES ? "EACCES" : err == EPERM ? "EPERM"
                   : err == ENOTSUP ? "ENOTSUP" : err == EEXIST ? "EEXIST" : err == ENOSPC ? "ENOSPC"
                   : err == E2BIG ? "E2BIG" : err == ERANGE ? "ERANGE" : err == EINVAL ? "EINVAL" : err == EROFS ? "EROFS" : err == ELOOP ? "ELOOP" : err == ENOTDIR ? "ENOTDIR" : err == EISDIR ? "EISDIR" : err == EXDEV ? "EXDEV" : err == EOPNOTSUPP ? "EOPNOTSUPP" : err == ENAMETOOLONG ? "ENAMETOOLONG" : err == EDQUOT ? "EDQUOT" : err == EMLINK ? "EMLINK" : err == EBADF ? "EBADF" : err == EMFILE ? "EMFILE" : err == ENFILE ? "ENFILE" : err == EFBIG ? "EFBIG" : "EIO";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_create_int32(env, err, &errnum);
  napi_set_named_property(env, error, "errno", errnum);
  napi_throw(env, error);
  return NULL;
}

// Every function takes a path (string or Buffer) first: the call's n arguments
// into argv and the path into path[PATH_BUF]; false (with a pending exception)
// when it is not one.
bool path_args(napi_env env, napi_callback_info info, napi_value *argv, size_t n, char *path) {
  size_t argc = n, len;
  bool isbuf = false;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  napi_is_buffer(env, argv[0], &isbuf);
  if (isbuf) {
    void *data;
    napi_get_buffer_info(env, argv[0], &data, &len);
    if (len >= PATH_BUF) {
      throw_errno(env, ENAMETOOLONG, "(path)");
      return false;
    }
    memcpy(path, data, len);
    path[len] = 0;
    return true;
  }
  if (napi_get_value_string_utf8(env, argv[0], path, PATH_BUF, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "path must be a string or Buffer");
    return false;
  }
  return true;
}

// readXattrs(path: string | Buffer): Array<[name: string, value: Buffer]>
static napi_value read_xattrs(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  char path[PATH_BUF];
  if (!path_args(env, info, argv, 1, path)) return NULL;
  napi_create_array(env, &result);
  char stackbuf[4096];
  char *names = stackbuf;
  ssize_t n = LIST(path, stackbuf, sizeof stackbuf);
  if (n < 0 && errno == ERANGE) {
    n = LIST(path, NULL, 0);
    if (n < 0) return throw_errno(env, errno, path);
    names = malloc(n);
    n = LIST(path, names, n);
  }
  if (n < 0) {
    int err = errno;
    if (names != stackbuf) free(names);
    if (err == ENOTSUP) return result;
    return throw_errno(env, err, path);
  }
  uint32_t idx = 0;
  int err = 0;
  for (char *p = names; p < names + n; p += strlen(p) + 1) {
    ssize_t vlen = GET(path, p, NULL, 0);
    if (vlen < 0) {
      if (errno == ENODATA) continue;
      err = errno;
      break;
    }
    void *data;
    napi_value buf, pair, name;
    napi_create_buffer(env, vlen, &data, &buf);
    if (vlen > 0 && GET(path, p, data, vlen) < 0) {
      err = errno;
      break;
    }
    napi_create_string_utf8(env, p, NAPI_AUTO_LENGTH, &name);
    napi_create_array_with_length(env, 2, &pair);
    napi_set_element(env, pair, 0, name);
    napi_set_element(env, pair, 1, buf);
    napi_set_element(env, result, idx++, pair);
  }
  if (names != stackbuf) free(names);
  return err ? throw_errno(env, err, path) : result;
}

double get_number(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

bool number_args(napi_env env, napi_callback_info info, size_t n, double *out, const char *usage) {
  napi_value argv[8];
  size_t argc = 8;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (n > 8 || argc < n) {
    napi_throw_type_error(env, NULL, usage);
    return false;
  }
  for (size_t i = 0; i < n; i++) out[i] = get_number(env, argv[i]);
  return true;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
    { "readXattrs", NULL, read_xattrs, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
  register_dirfd(env, exports);
  register_tmpfile(env, exports);
  register_seek(env, exports);
  register_copy(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
