// Output files that cannot outlive their writer (src/format/atomic-file.ts):
// an anonymous file (O_TMPFILE) given its name only when complete (linkat
// through /proc/self/fd, which needs no CAP_DAC_READ_SEARCH), flock so a
// later build can tell a temporary name whose writer is gone, and, for the
// named fallback, a signal handler that removes the temporary names before
// SIGINT, SIGTERM or SIGHUP ends the process. A JavaScript listener could not
// do that: the build is synchronous, so listeners would run only after it.
#define _GNU_SOURCE // O_TMPFILE
#include "addon.h"
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

// openTmpfile(dir, mode): an unnamed regular file in dir, read-write.
static napi_value open_tmpfile(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  char dir[PATH_BUF];
  if (!path_args(env, info, argv, 2, dir)) return NULL;
#ifdef O_TMPFILE
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, (mode_t)get_number(env, argv[1]));
  if (fd < 0) return throw_errno(env, errno, dir);
  napi_create_int32(env, fd, &result);
  return result;
#else
  (void)result;
  return throw_errno(env, EOPNOTSUPP, dir);
#endif
}

// linkFd(path, fd): gives the open file fd the name path; EEXIST if taken.
static napi_value link_fd(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[PATH_BUF], proc[64];
  if (!path_args(env, info, argv, 2, path)) return NULL;
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", (int)get_number(env, argv[1]));
  if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) != 0) return throw_errno(env, errno, path);
  return NULL;
}

// lockFd(path, fd, wait): an exclusive flock; false when another holds it
// and wait is false. path only names the file in errors.
static napi_value lock_fd(napi_env env, napi_callback_info info) {
  napi_value argv[3], result;
  char path[PATH_BUF];
  bool wait = false;
  if (!path_args(env, info, argv, 3, path)) return NULL;
  napi_get_value_bool(env, argv[2], &wait);
  int r = flock((int)get_number(env, argv[1]), LOCK_EX | (wait ? 0 : LOCK_NB));
  if (r != 0 && errno != EWOULDBLOCK) return throw_errno(env, errno, path);
  napi_get_boolean(env, r == 0, &result);
  return result;
}

// Temporary names to remove on a terminating signal. Slots are written
// before they are marked in use and unmarked before they are reused, so the
// handler only ever sees whole paths.
#define SLOTS 8
static char guarded[SLOTS][PATH_BUF];
static volatile sig_atomic_t in_use[SLOTS];
static const int SIGNALS[] = { SIGINT, SIGTERM, SIGHUP };
#define NSIG_GUARDED (int)(sizeof SIGNALS / sizeof SIGNALS[0])
static struct sigaction previous[NSIG_GUARDED];
static bool installed[NSIG_GUARDED];
static int guards;

static void on_signal(int sig) {
  int saved = errno;
  for (int i = 0; i < SLOTS; i++)
    if (in_use[i]) unlink(guarded[i]);
  // Then whatever the signal did before (usually: end the process), once
  // this handler returns and the signal, raised again, is unblocked.
  for (int i = 0; i < NSIG_GUARDED; i++)
    if (SIGNALS[i] == sig) sigaction(sig, &previous[i], NULL);
  raise(sig);
  errno = saved;
}

static void install(void) {
  for (int i = 0; i < NSIG_GUARDED; i++) {
    struct sigaction now;
    if (sigaction(SIGNALS[i], NULL, &now) != 0) continue;
    // An ignored signal (nohup) stays ignored: it must not end the build.
    if (!(now.sa_flags & SA_SIGINFO) && now.sa_handler == SIG_IGN) continue;
    struct sigaction ours;
    memset(&ours, 0, sizeof ours);
    ours.sa_handler = on_signal;
    sigemptyset(&ours.sa_mask);
    for (int j = 0; j < NSIG_GUARDED; j++) sigaddset(&ours.sa_mask, SIGNALS[j]);
    previous[i] = now;
    installed[i] = sigaction(SIGNALS[i], &ours, NULL) == 0;
  }
}

static void uninstall(void) {
  for (int i = 0; i < NSIG_GUARDED; i++) {
    struct sigaction now;
    // Left alone if someone replaced our handler since (or it already ran).
    if (installed[i] && sigaction(SIGNALS[i], NULL, &now) == 0 && !(now.sa_flags & SA_SIGINFO) && now.sa_handler == on_signal) {
      sigaction(SIGNALS[i], &previous[i], NULL);
    }
    installed[i] = false;
  }
}

// guardPath(path): slot number; the path is removed if SIGINT, SIGTERM or
// SIGHUP arrives before unguardPath(slot).
static napi_value guard_path(napi_env env, napi_callback_info info) {
  napi_value argv[1], result;
  char path[PATH_BUF];
  if (!path_args(env, info, argv, 1, path)) return NULL;
  int slot = -1;
  for (int i = 0; i < SLOTS && slot < 0; i++)
    if (!in_use[i]) slot = i;
  if (slot < 0) return throw_errno(env, EMFILE, path);
  if (guards++ == 0) install();
  memcpy(guarded[slot], path, PATH_BUF);
  atomic_signal_fence(memory_order_seq_cst);
  in_use[slot] = 1;
  napi_create_int32(env, slot, &result);
  return result;
}

static napi_value unguard_path(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int slot = (int)get_number(env, argv[0]);
  if (slot < 0 || slot >= SLOTS || !in_use[slot]) return NULL;
  in_use[slot] = 0;
  if (--guards == 0) uninstall();
  return NULL;
}

void register_tmpfile(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
    { "openTmpfile", NULL, open_tmpfile, NULL, NULL, NULL, napi_default, NULL },
    { "linkFd", NULL, link_fd, NULL, NULL, NULL, napi_default, NULL },
    { "lockFd", NULL, lock_fd, NULL, NULL, NULL, napi_default, NULL },
    { "guardPath", NULL, guard_path, NULL, NULL, NULL, napi_default, NULL },
    { "unguardPath", NULL, unguard_path, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns);
}
