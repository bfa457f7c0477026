// Shared by the addon's source files: one module (xattr.c registers it), the
// other files add their functions through register_*.
#ifndef DISKWRIGHT_ADDON_H
#define DISKWRIGHT_ADDON_H
#include <node_api.h>
#include <stdbool.h>

#define PATH_BUF 4097

/** Throws an Error with `code` (ENOENT, ...) and `errno`; returns NULL. */
napi_value throw_errno(napi_env env, int err, const char *path);
/** The call's n arguments into argv and the first (string or Buffer) into path[PATH_BUF]. */
bool path_args(napi_env env, napi_callback_info info, napi_value *argv, size_t n, char *path);
double get_number(napi_env env, napi_value v);
/** The call's first n (at most 8) arguments as numbers into out; false (a TypeError thrown) with fewer. */
bool number_args(napi_env env, napi_callback_info info, size_t n, double *out, const char *usage);

/** Directory-handle (*at) calls for extract (dirfd.c). */
void register_dirfd(napi_env env, napi_value exports);
/** Anonymous output files: O_TMPFILE and linkat (tmpfile.c). */
void register_tmpfile(napi_env env, napi_value exports);
/** lseek with SEEK_DATA / SEEK_HOLE: where a sparse file's holes are (seek.c). */
void register_seek(napi_env env, napi_value exports);
/** copy_file_range: file-to-file copies inside the kernel (copy.c). */
void register_copy(napi_env env, napi_value exports);
#endif
