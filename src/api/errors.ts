// One error class for everything the user can get wrong. The CLI prints
// `message` as one line and exits 1; `code` is stable for programs.
export type ErrorCode =
  | 'SOURCE_MISSING'
  | 'SOURCE_NOT_DIR'
  | 'SOURCE_UNREADABLE'
  | 'SOURCE_CHANGED'
  | 'SIZE_TOO_SMALL'
  | 'SIZE_INVALID'
  | 'OUTPUT_IS_DIR'
  | 'OUTPUT_WRITE'
  | 'UUID_INVALID'
  | 'LABEL_TOO_LONG'
  | 'TOO_MANY_INODES'
  | 'TOO_LARGE'
  | 'NAME_TOO_LONG'
  | 'SYMLINK_TOO_LONG'
  | 'XATTR_TOO_LARGE'
  | 'XATTR_UNSUPPORTED'
  | 'OPTION_INVALID'
  | 'CONFIG_UNREADABLE'
  | 'CONFIG_INVALID'
  | 'CONTENTS_INVALID'
  | 'DUPLICATE_ENTRY'
  | 'OWNER_UNKNOWN'
  | 'NAME_INVALID'
  | 'TOO_MANY_FILES'
  | 'PARTITION_INVALID';

export class DiskwrightError extends Error {
  readonly code: ErrorCode;
  readonly data: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, data: Record<string, unknown> = {}) {
    super(message);
    this.name = 'DiskwrightError';
    this.code = code;
    this.data = data;
  }
}
