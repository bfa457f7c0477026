// Exit statuses, in one place: README's "Exit status" table says the same
// (test/cli/exit-status.test.ts holds the two together). A command may choose
// a status besides success and error (diff: 1 when the images differ), read
// by main.ts after the command has run.
import { DiskwrightError, type ErrorCode } from '../errors.ts';
import { errnoOf } from '../util/sys-error.ts';

export const EXIT = {
  ok: 0,
  /** An error the input or the machine causes; diff: the images differ; extract: entries skipped. */
  error: 1,
  /** The command line does not parse (unknown command or option, a missing argument); diff: any error. */
  usage: 2,
  /** A bug in diskwright (sysexits' EX_SOFTWARE). */
  internal: 70,
  /** The reader of standard output went away, as a shell reports SIGPIPE. */
  pipe: 141,
} as const;

/**
 * Each error code's status: all are things the user can fix in the input, the
 * options or the machine, so 1 as most tools; listed by code (the compiler
 * checks every code is here) so that a code given another status is one edit.
 */
export const ERROR_CODE_STATUS: Record<ErrorCode, number> = {
  SOURCE_MISSING: 1, SOURCE_NOT_DIR: 1, SOURCE_UNREADABLE: 1, SOURCE_CHANGED: 1, SIZE_TOO_SMALL: 1, SIZE_INVALID: 1,
  OUTPUT_IS_DIR: 1, OUTPUT_WRITE: 1, UUID_INVALID: 1, LABEL_TOO_LONG: 1, TOO_MANY_INODES: 1, TOO_LARGE: 1, NAME_TOO_LONG: 1,
  SYMLINK_TOO_LONG: 1, XATTR_TOO_LARGE: 1, XATTR_UNSUPPORTED: 1, OPTION_INVALID: 1, CONFIG_UNREADABLE: 1, CONFIG_INVALID: 1,
  CONTENTS_INVALID: 1, DUPLICATE_ENTRY: 1, OWNER_UNKNOWN: 1, NAME_INVALID: 1, TOO_MANY_FILES: 1, PARTITION_INVALID: 1,
  NAR_UNSUPPORTED: 1, STORE_PATH_MISSING: 1, STORE_PATH_INVALID: 1, REGISTRATION_INVALID: 1, REFERENCE_MISSING: 1,
  NAR_HASH_MISMATCH: 1, IMAGE_UNREADABLE: 1, IMAGE_TRUNCATED: 1, IMAGE_CORRUPT: 1, FILESYSTEM_UNKNOWN: 1,
  PARTITION_NOT_FOUND: 1, PATH_NOT_FOUND: 1, NOT_A_DIRECTORY: 1, NOT_A_FILE: 1, UNSAFE_NAME: 1, INPUT_NOT_IMAGE: 1,
  INPUT_UNSUPPORTED: 1, NATIVE_ADDON_MISSING: 1,
};

/** Commands whose errors all exit with another status (diff: 2, as cmp and diff do, since 1 means "different"). */
export const COMMAND_ERROR_STATUS: Record<string, number> = { diff: EXIT.usage };

/** A system call's error (a path it could not open, a full disk), as error-line.ts words it. */
export function isSystemError(err: unknown): boolean {
  return errnoOf(err) !== undefined && typeof (err as NodeJS.ErrnoException)?.syscall === 'string';
}

/** The status an error that ends `command` exits with. */
export function errorStatus(err: unknown, command: string): number {
  if (COMMAND_ERROR_STATUS[command] !== undefined) return COMMAND_ERROR_STATUS[command];
  if (err instanceof DiskwrightError) return ERROR_CODE_STATUS[err.code] ?? EXIT.error;
  return isSystemError(err) ? EXIT.error : EXIT.internal;
}

let status: number = EXIT.ok;

export function setExitStatus(n: number): void {
  status = n;
}

export function exitStatus(): number {
  return status;
}
