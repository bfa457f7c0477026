// Thin wrappers around the e2fsprogs / util-linux tools the ext4 oracle uses.
// Every tool runs through spawnSync with an argument vector (never a shell), in
// the C locale so the output we parse does not depend on the host's language.
import { spawnSync } from 'node:child_process';
import { accessSync, closeSync, constants, mkdtempSync, openSync, readSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

/** Where root's tools live on Debian even when PATH lacks the sbin directories. */
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin'];

const ENV: NodeJS.ProcessEnv = {
  ...process.env,
  LC_ALL: 'C',
  LANG: 'C',
  TZ: 'UTC',
  DEBUGFS_PAGER: '__none__',
  PAGER: '__none__',
  // e2fsck must not pick up host configuration that changes its output.
  E2FSCK_CONFIG: '/dev/null',
};

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

const resolved = new Map<string, string | null>();

/** Absolute path of an executable found on PATH or in the sbin directories, or null. */
export function findTool(name: string): string | null {
  if (name.includes('/')) return name;
  const hit = resolved.get(name);
  if (hit !== undefined) return hit;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  let found: string | null = null;
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      found = candidate;
      break;
    } catch {
      // keep looking
    }
  }
  resolved.set(name, found);
  return found;
}

export function hasTool(name: string): boolean {
  return findTool(name) !== null;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/**
 * Throws (loudly, with an install hint) unless every tool is present. Tests call
 * this instead of skipping: CI installs everything, so a missing tool is a bug.
 */
export function requireTools(...names: string[]): void {
  const missing = names.filter((n) => !hasTool(n));
  if (missing.length > 0) {
    throw new Error(
      `oracle: required tool(s) missing: ${missing.join(', ')} ` +
        `(Debian: apt-get install -y e2fsprogs attr acl util-linux coreutils)`,
    );
  }
}

/** Throws unless running as root (loop mounts, mknod, chown, trusted.* xattrs need it). */
export function requireRoot(what = 'this test'): void {
  if (!isRoot()) throw new Error(`oracle: ${what} must run as root (uid 0), running as uid ${process.getuid?.()}`);
}

export interface RunResult {
  status: number;
  stdout: Buffer;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  cwd?: string;
  /** Without it a non-zero exit status throws. */
  allowFailure?: boolean;
  env?: NodeJS.ProcessEnv;
}

/** Runs a tool with an argument vector (no shell) and returns raw stdout bytes. */
export function run(tool: string, args: readonly string[], opts: RunOptions = {}): RunResult {
  const exe = findTool(tool);
  if (exe === null) requireTools(tool);
  const r = spawnSync(exe as string, args as string[], {
    cwd: opts.cwd,
    input: opts.input,
    env: opts.env ?? ENV,
    maxBuffer: 1 << 30,
  });
  if (r.error) throw new Error(`oracle: cannot run ${tool}: ${r.error.message}`);
  const status = r.status ?? 128 + 1;
  const stderr = r.stderr.toString('utf8');
  if (r.signal) throw new Error(`oracle: ${tool} ${args.join(' ')} killed by ${r.signal}\n${stderr}`);
  if (status !== 0 && !opts.allowFailure) {
    throw new Error(
      `oracle: ${tool} ${args.join(' ')} exited with ${status}\n${stderr}${r.stdout.toString('utf8').slice(0, 4000)}`,
    );
  }
  return { status, stdout: r.stdout, stderr };
}

// ---------------------------------------------------------------- e2fsck

export interface E2fsckResult {
  status: number;
  /** stdout then stderr, as printed. */
  output: string;
  /** status 0 and nothing but the version banner, the pass headers and the summary. */
  clean: boolean;
  /** Every line that is not part of a clean run's output. */
  problems: string[];
}

// What `e2fsck -fn` prints on a consistent file system (e2fsprogs 1.47):
//   e2fsck 1.47.0 (5-Feb-2023)                                    (stderr)
//   Pass 1: Checking inodes, blocks, and sizes
//   Pass 2: Checking directory structure
//   Pass 3: Checking directory connectivity
//   Pass 4: Checking reference counts
//   Pass 5: Checking group summary information
//   img: 18/5120 files (5.6% non-contiguous), 1361/5120 blocks
// Any other line (a question answered "no", "Fix? no", a WARNING, "was not
// cleanly unmounted", "***** FILE SYSTEM WAS MODIFIED *****", ...) is a problem.
const CLEAN_LINES: RegExp[] = [
  /^e2fsck \d+\.\d+(\.\d+)?\S* \(.*\)$/,
  /^Pass [1-5]: (Checking inodes, blocks, and sizes|Checking directory structure|Checking directory connectivity|Checking reference counts|Checking group summary information)$/,
  /^.+: \d+\/\d+ files \(\d+\.\d% non-contiguous\), \d+\/\d+ blocks$/,
];

/** `e2fsck -fn image`: forced, read-only check (answers "no" to every question). */
export function e2fsck(image: string): E2fsckResult {
  const r = run('e2fsck', ['-fn', image], { allowFailure: true });
  const output = r.stdout.toString('utf8') + r.stderr;
  const problems = output
    .split('\n')
    .filter((line) => line.trim() !== '' && !CLEAN_LINES.some((re) => re.test(line)));
  const passes = output.split('\n').filter((line) => /^Pass [1-5]: /.test(line)).length;
  if (passes !== 5 && problems.length === 0) problems.push(`(only ${passes} of 5 passes ran)`);
  return { status: r.status, output, clean: r.status === 0 && problems.length === 0, problems };
}

// ---------------------------------------------------------------- dumpe2fs

/**
 * `dumpe2fs -h image` as a record: "Block count" -> "51200", "Filesystem
 * features" -> "has_journal ext_attr ...". Journal fields printed after the
 * superblock ("Journal features", "Total journal size", ...) are included too.
 * Values are trimmed; the first occurrence of a key wins.
 */
export function dumpe2fs(image: string): Record<string, string> {
  const r = run('dumpe2fs', ['-h', image]);
  const out: Record<string, string> = {};
  for (const line of r.stdout.toString('utf8').split('\n')) {
    const m = /^([^:]+):\s*(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1].trim();
    if (!(key in out)) out[key] = m[2].trim();
  }
  if (!('Block count' in out)) throw new Error(`oracle: dumpe2fs -h ${image}: no superblock fields\n${r.stderr}`);
  return out;
}

// ---------------------------------------------------------------- debugfs

export interface DebugfsResult {
  status: number;
  /** Everything debugfs printed on stdout (raw bytes: names need not be UTF-8). */
  stdout: Buffer;
  /** Error messages (debugfs reports per-command errors here, not in stdout). */
  stderr: string;
  /** stdout cut at debugfs's "debugfs: <command>" echo lines: outputs[i] belongs to commands[i]. */
  outputs: Buffer[];
}

export interface DebugfsOptions {
  /** Open read-write (-w). Default: read-only. */
  writable?: boolean;
  /** Open with -c (catastrophic mode: do not read bitmaps). */
  catastrophic?: boolean;
}

/**
 * Runs the commands in one debugfs process (`debugfs -f cmdfile image`). Each
 * command is one line; it cannot contain a newline (use `<ino>` filespecs to
 * reach names with awkward bytes). Per-command errors go to `stderr` and do not
 * change the exit status, so callers must check what they parse.
 */
export function debugfs(image: string, commands: readonly string[], opts: DebugfsOptions = {}): DebugfsResult {
  for (const c of commands) {
    if (c.includes('\n')) throw new Error(`oracle: debugfs command contains a newline: ${JSON.stringify(c)}`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'oracle-debugfs-'));
  try {
    const cmdfile = join(dir, 'commands');
    writeFileSync(cmdfile, commands.map((c) => c + '\n').join(''));
    const args = ['-f', cmdfile];
    if (opts.writable) args.unshift('-w');
    if (opts.catastrophic) args.unshift('-c');
    args.push(image);
    const r = run('debugfs', args, { allowFailure: true });
    return { ...r, outputs: splitEcho(r.stdout, commands) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Cuts debugfs -f output at the "debugfs: <cmd>\n" line it echoes before running each command. */
function splitEcho(stdout: Buffer, commands: readonly string[]): Buffer[] {
  const outputs: Buffer[] = [];
  const markers = commands.map((c) => Buffer.from(`debugfs: ${c}\n`, 'utf8'));
  let pos = 0;
  let start = -1;
  for (let i = 0; i < commands.length; i++) {
    // Not anchored at a line start: `cat` output need not end in a newline.
    const at = stdout.indexOf(markers[i], pos);
    if (at < 0) throw new Error(`oracle: debugfs did not echo command ${i}: ${commands[i]}`);
    if (i > 0) outputs.push(stdout.subarray(start, at));
    start = at + markers[i].length;
    pos = start;
  }
  if (commands.length > 0) outputs.push(stdout.subarray(start));
  return outputs;
}

// ---------------------------------------------------------------- loop mount

export interface MountOptions {
  /** mount -o list. Default ro,loop,noload: never replay a journal (the image stays untouched). */
  options?: string[];
  /** mount -t. Default ext4. */
  type?: string;
}

/**
 * Mounts the image read-only on a fresh temporary directory, calls fn with the
 * mount point, and always unmounts and removes the directory afterwards (also
 * when fn throws). The loop device is released by umount (util-linux sets
 * autoclear for -o loop).
 */
export async function withLoopMount<T>(
  image: string,
  fn: (mountpoint: string) => T | Promise<T>,
  opts: MountOptions = {},
): Promise<T> {
  requireRoot('withLoopMount');
  const options = opts.options ?? ['ro', 'loop', 'noload'];
  const dir = mkdtempSync(join(tmpdir(), 'oracle-mnt-'));
  let mounted = false;
  try {
    run('mount', ['-t', opts.type ?? 'ext4', '-o', options.join(','), image, dir]);
    mounted = true;
    return await fn(dir);
  } finally {
    if (mounted) unmount(dir);
    rmdirSync(dir);
  }
}

function unmount(dir: string): void {
  let last = '';
  for (let attempt = 0; attempt < 20; attempt++) {
    const r = run('umount', [dir], { allowFailure: true });
    if (r.status === 0) return;
    last = r.stderr;
    // Busy (e.g. a stream still closing): wait a little and retry.
    sleepSync(100);
  }
  // Last resort so the test run does not leave a mount behind.
  const lazy = run('umount', ['-l', dir], { allowFailure: true });
  if (lazy.status !== 0) throw new Error(`oracle: cannot unmount ${dir}: ${last}${lazy.stderr}`);
}

// ---------------------------------------------------------------- raw reads

/** `length` bytes of a file at `offset` (for checking structures at known places). */
export function readAt(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const b = Buffer.alloc(length);
    readSync(fd, b, 0, length, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}
