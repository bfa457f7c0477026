// The one place that loads the native addon (src/native/*.c): syscall
// plumbing Node lacks (xattrs, mknod, exact utimensat, *at calls on directory
// handles, O_TMPFILE, SEEK_DATA/SEEK_HOLE, copy_file_range). Each caller declares the functions
// it uses. node-gyp-build picks a local build (build/Release, a checkout or a
// machine that compiled it at install) or the package's prebuilt binary for
// this platform (prebuilds/, linux-x64 and linux-arm64). Without either,
// diskwright still runs: each caller has a fallback or says what it cannot do.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
/** The package root: two levels up from src/native/ and from dist/native/ alike. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Addon = Record<string, (...args: any[]) => any>;

function load(): Addon | undefined {
  try {
    return (require('node-gyp-build') as (dir: string) => Addon)(ROOT);
  } catch {
    return undefined;
  }
}

/** The addon, or undefined where no build fits this machine. */
export const addon = load();

/** Why the addon is missing and how to get it, for messages. */
export const ADDON_MISSING = `diskwright's native addon is not installed for ${process.platform}-${process.arch} (no prebuilt binary fits and none was compiled); reinstall diskwright where a C compiler, make and python3 are present (\`npm rebuild diskwright\`)`;

let warned = false;

/** Says once per process, as a Node warning, that something is skipped for lack of the addon. */
export function warnAddonMissing(what: string): void {
  if (warned) return;
  warned = true;
  process.emitWarning(`${what}: ${ADDON_MISSING}`, { type: 'DiskwrightWarning', code: 'DISKWRIGHT_NO_ADDON' });
}
