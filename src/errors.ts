// One error class for everything the user can get wrong, below every layer
// (formats, filesystems, readers, the disk compiler and the API all throw it;
// none imports the API to do so). The CLI prints `message` as one line and
// maps `code` to an exit status; `code` is stable for programs and `data`
// carries what the message says (the config key or flag, path, minimum, input).
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
  | 'PARTITION_INVALID'
  // Nix stores, NARs and closures (src/nix/).
  | 'NAR_UNSUPPORTED'
  | 'STORE_PATH_MISSING'
  | 'STORE_PATH_INVALID'
  | 'REGISTRATION_INVALID'
  | 'REFERENCE_MISSING'
  | 'NAR_HASH_MISMATCH'
  // Reading images (src/read/).
  | 'IMAGE_UNREADABLE'
  | 'IMAGE_TRUNCATED'
  | 'IMAGE_CORRUPT'
  | 'FILESYSTEM_UNKNOWN'
  | 'PARTITION_NOT_FOUND'
  | 'PATH_NOT_FOUND'
  | 'NOT_A_DIRECTORY'
  | 'NOT_A_FILE'
  // An entry extract will not write under its name (read/names.ts), with --strict.
  | 'UNSAFE_NAME'
  // Converting images (src/format/input.ts, src/api/convert.ts).
  | 'INPUT_NOT_IMAGE'
  | 'INPUT_UNSUPPORTED'
  // A feature that needs the native addon (src/native/addon.ts) where none is installed.
  | 'NATIVE_ADDON_MISSING';

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
