// Directory-handle calls for `diskwright extract`: every entry is created by
// name relative to a directory fd that extract made itself, and nothing is
// resolved through a symlink (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, O_EXCL), so a
// hostile image cannot steer a write outside the target. Names are one path
// component as raw bytes (Buffer); an empty name means the fd itself, for the
// attribute calls. Syscall plumbing only: which names are safe is decided in
// TypeScript (src/read/names.ts).
#include "addon.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/sysmacros.h>
#endif

#define NAME_BUF 256

static int get_fd(napi_env env, napi_value v) {
  int32_t fd = -1;
  napi_get_value_int32(env, v, &fd);
  return fd;
}

// A Buffer or string holding one path component into out[NAME_BUF]. A '/'
// or NUL would make the *at call resolve more than one name: refused
// (EINVAL) as a last guard; so is an empty name unless `empty_ok`.
static bool name_arg(napi_env env, napi_value v, char *out, bool empty_ok) {
  bool isbuf = false;
  size_t len = 0;
  napi_is_buffer(env, v, &isbuf);
  if (isbuf) {
    void *data;
    napi_get_buffer_info(env, v, &data, &len);
    if (len >= NAME_BUF) {
      throw_errno(env, ENAMETOOLONG, "(name)");
      return false;
    }
    memcpy(out, data, len);
  } else if (napi_get_value_string_utf8(env, v, out, NAME_BUF, &len) != napi_ok || len >= NAME_BUF - 1) {
    napi_throw_type_error(env, NULL, "name must be a Buffer or a short string");
    return false;
  }
  out[len] = 0;
  if (memchr(out, '/', len) || strlen(out) != len || (len == 0 && !empty_ok)) {
    throw_errno(env, EINVAL, "(name)");
    return false;
  }
  return true;
}

static void args(napi_env env, napi_callback_info info, napi_value *argv, size_t n) {
  size_t argc = n;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
}

// The common start of a call taking (dirfd, name, ...): its n arguments into
// argv, the fd into *fd and the name into name[NAME_BUF].
static bool at_args(napi_env env, napi_callback_info info, napi_value *argv, size_t n, int *fd, char *name, bool empty_ok) {
  args(env, info, argv, n);
  *fd = get_fd(env, argv[0]);
  return name_arg(env, argv[1], name, empty_ok);
}

static napi_value int_result(napi_env env, int n) {
  napi_value v;
  napi_create_int32(env, n, &v);
  return v;
}

// openDirAt(dirfd, name): fd of the directory `name`, never through a symlink.
static napi_value open_dir_at(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char name[NAME_BUF];
  int fd;
  if (!at_args(env, info, argv, 2, &fd, name, false)) return NULL;
  int out = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (out < 0) return throw_errno(env, errno, name);
  return int_result(env, out);
}

// mkdirAt(dirfd, name, mode).
static napi_value mkdir_at(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char name[NAME_BUF];
  int fd;
  if (!at_args(env, info, argv, 3, &fd, name, false)) return NULL;
  if (mkdirat(fd, name, (mode_t)get_number(env, argv[2])) != 0) return throw_errno(env, errno, name);
  return NULL;
}

// createFileAt(dirfd, name, mode): a new regular file open for writing
// (O_EXCL: never an existing file, never through a symlink).
static napi_value create_file_at(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char name[NAME_BUF];
  int fd;
  if (!at_args(env, info, argv, 3, &fd, name, false)) return NULL;
  int out = openat(fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (mode_t)get_number(env, argv[2]));
  if (out < 0) return throw_errno(env, errno, name);
  return int_result(env, out);
}

// symlinkAt(target: Buffer, dirfd, name).
static napi_value symlink_at(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char target[PATH_BUF], name[NAME_BUF];
  if (!path_args(env, info, argv, 3, target)) return NULL;
  if (!name_arg(env, argv[2], name, false)) return NULL;
  if (symlinkat(target, get_fd(env, argv[1]), name) != 0) return throw_errno(env, errno, name);
  return NULL;
}

// linkAt(olddirfd, oldname, newdirfd, newname): a hard link, the old name not followed.
static napi_value link_at(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  char oldname[NAME_BUF], newname[NAME_BUF];
  args(env, info, argv, 4);
  if (!name_arg(env, argv[1], oldname, false) || !name_arg(env, argv[3], newname, false)) return NULL;
  if (linkat(get_fd(env, argv[0]), oldname, get_fd(env, argv[2]), newname, 0) != 0) return throw_errno(env, errno, newname);
  return NULL;
}

// mknodAt(dirfd, name, mode (type and permission bits), major, minor).
static napi_value mknod_at(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  char name[NAME_BUF];
  int fd;
  if (!at_args(env, info, argv, 5, &fd, name, false)) return NULL;
  mode_t mode = (mode_t)get_number(env, argv[2]);
  dev_t dev = makedev((unsigned int)get_number(env, argv[3]), (unsigned int)get_number(env, argv[4]));
  if (mknodat(fd, name, mode, dev) != 0) return throw_errno(env, errno, name);
  return NULL;
}

// chownAt(dirfd, name, uid, gid): the entry itself, a symlink not followed; '' is the fd.
static napi_value chown_at(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  char name[NAME_BUF];
  int fd;
  if (!at_args(env, info, argv, 4, &fd, name, true)) return NULL;
  uid_t uid = (uid_t)get_number(env, argv[2]);
  gid_t gid = (gid_t)get_number(env, argv[3]);
  int rc = name[0] ? fchownat(fd, name, uid, gid, AT_SYMLINK_NOFOLLOW) : fchown(fd, uid, gid);
  if (rc != 0) return throw_errno(env, errno, name);
  return NULL;
}

// chmodAt(dirfd, name, mode); '' is the fd. Never called on a symlink (Linux
// cannot change a symlink's mode), and `name` is a node extract just made.
static napi_value chmod_at(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char name[NAME_BUF];
  int fd;
  if (!at_args(env, info, argv, 3, &fd, name, true)) return NULL;
  mode_t mode = (mode_t)get_number(env, argv[2]);
  int rc = name[0] ? fchmodat(fd, name, mode, 0) : fchmod(fd, mode);
  if (rc != 0) return throw_errno(env, errno, name);
  return NULL;
}

// utimensAt(dirfd, name, atimeSec, atimeNsec, mtimeSec, mtimeNsec): exact
// nanoseconds, a symlink not followed; '' is the fd.
static napi_value utimens_at(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  char name[NAME_BUF];
  int fd;
  if (!at_args(env, info, argv, 6, &fd, name, true)) return NULL;
  struct timespec ts[2];
  ts[0].tv_sec = (time_t)get_number(env, argv[2]);
  ts[0].tv_nsec = (long)get_number(env, argv[3]);
  ts[1].tv_sec = (time_t)get_number(env, argv[4]);
  ts[1].tv_nsec = (long)get_number(env, argv[5]);
  int rc = name[0] ? utimensat(fd, name, ts, AT_SYMLINK_NOFOLLOW) : futimens(fd, ts);
  if (rc != 0) return throw_errno(env, errno, name);
  return NULL;
}

// setXattrAt(dirfd, name, xattrName: string, value: Buffer); '' is the fd
// (fsetxattr). A name goes through the directory fd's /proc/self/fd link,
// with lsetxattr so the entry itself (a symlink, a device) is not followed.
static napi_value set_xattr_at(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  char name[NAME_BUF], xname[256];
  size_t len;
  int fd;
  if (!at_args(env, info, argv, 4, &fd, name, true)) return NULL;
  if (napi_get_value_string_utf8(env, argv[2], xname, sizeof xname, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "xattr name must be a string");
    return NULL;
  }
  void *data;
  size_t vlen;
  napi_get_buffer_info(env, argv[3], &data, &vlen);
  const void *value = vlen ? data : "";
  int rc;
#ifdef __linux__
  if (name[0]) {
    char proc[64 + NAME_BUF];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d/%s", fd, name);
    rc = lsetxattr(proc, xname, value, vlen, 0);
  } else {
    rc = fsetxattr(fd, xname, value, vlen, 0);
  }
#else
  errno = ENOTSUP;
  rc = -1;
#endif
  if (rc != 0) return throw_errno(env, errno, name);
  return NULL;
}

void register_dirfd(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
    { "openDirAt", NULL, open_dir_at, NULL, NULL, NULL, napi_default, NULL },
    { "mkdirAt", NULL, mkdir_at, NULL, NULL, NULL, napi_default, NULL },
    { "createFileAt", NULL, create_file_at, NULL, NULL, NULL, napi_default, NULL },
    { "symlinkAt", NULL, symlink_at, NULL, NULL, NULL, napi_default, NULL },
    { "linkAt", NULL, link_at, NULL, NULL, NULL, napi_default, NULL },
    { "mknodAt", NULL, mknod_at, NULL, NULL, NULL, napi_default, NULL },
    { "chownAt", NULL, chown_at, NULL, NULL, NULL, napi_default, NULL },
    { "chmodAt", NULL, chmod_at, NULL, NULL, NULL, napi_default, NULL },
    { "utimensAt", NULL, utimens_at, NULL, NULL, NULL, napi_default, NULL },
    { "setXattrAt", NULL, set_xattr_at, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
}
