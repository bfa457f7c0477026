// A throwaway single-user Nix store for the oracle tests: Debian's nix-bin
// (2.8) with its store, state, log and config directories under a temporary
// directory (NIX_STORE_DIR and friends), sandbox off, no daemon, no
// substituters. Missing nix-bin or jq fails the tests: CI installs both.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findTool } from '../oracle/tools.ts';

export const HERE = import.meta.dirname;

export function requireNix(): void {
  const missing = ['nix-store', 'nix-build', 'nix-instantiate', 'nix', 'nix-hash', 'jq'].filter((t) => findTool(t) === null);
  if (missing.length > 0) {
    throw new Error(`oracle: required tool(s) missing: ${missing.join(', ')} (Debian: apt-get install -y nix-bin jq)`);
  }
}

export interface NixStore {
  /** The temporary directory holding everything. */
  root: string;
  /** NIX_STORE_DIR: the store paths are named under it and live in it. */
  storeDir: string;
  stateDir: string;
  env: NodeJS.ProcessEnv;
  /** Runs a nix tool; throws on a non-zero exit. `state` overrides NIX_STATE_DIR. */
  run(tool: string, args: string[], opts?: { input?: string | Buffer; state?: string; allowFailure?: boolean }): { status: number; stdout: Buffer; stderr: string };
  /** nix-build FILE [-A attr] [--arg ...]: the output paths. */
  build(file: string, args?: string[]): string[];
  cleanup(): void;
}

export function makeNixStore(): NixStore {
  requireNix();
  // Nix refuses a store whose path goes through a symlink.
  const root = fs.mkdtempSync(path.join(fs.realpathSync(os.tmpdir()), 'dw-nix-'));
  const storeDir = path.join(root, 'store');
  const stateDir = path.join(root, 'state');
  const confDir = path.join(root, 'conf');
  fs.mkdirSync(confDir);
  fs.writeFileSync(
    path.join(confDir, 'nix.conf'),
    ['sandbox = false', 'build-users-group =', 'substituters =', 'experimental-features = nix-command', 'auto-optimise-store = false', ''].join('\n'),
  );
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: root,
    XDG_CACHE_HOME: path.join(root, 'cache'),
    LC_ALL: 'C',
    TZ: 'UTC',
    NIX_STORE_DIR: storeDir,
    NIX_STATE_DIR: stateDir,
    NIX_LOG_DIR: path.join(root, 'log'),
    NIX_CONF_DIR: confDir,
  };
  const run: NixStore['run'] = (tool, args, opts = {}) => {
    const exe = findTool(tool);
    if (!exe) throw new Error(`oracle: ${tool} missing (Debian: apt-get install -y nix-bin jq)`);
    const r = spawnSync(exe, args, {
      env: opts.state ? { ...env, NIX_STATE_DIR: opts.state } : env,
      input: opts.input,
      maxBuffer: 1 << 30,
    });
    if (r.error) throw r.error;
    const status = r.status ?? 129;
    const stderr = String(r.stderr);
    if (status !== 0 && !opts.allowFailure) throw new Error(`oracle: ${tool} ${args.join(' ')} exited with ${status}\n${stderr}`);
    return { status, stdout: r.stdout, stderr };
  };
  return {
    root,
    storeDir,
    stateDir,
    env,
    run,
    build(file, args = []) {
      const out = run('nix-build', [file, '--no-out-link', ...args]).stdout.toString().trim();
      return out === '' ? [] : out.split('\n');
    },
    cleanup() {
      // Nix leaves store paths read-only.
      spawnSync('chmod', ['-R', 'u+w', root]);
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

export const FIXTURE_ATTRS = ['lib', 'data', 'named', 'tool', 'app', 'dup1', 'dup2', 'other', 'link', 'root'] as const;
export type FixtureName = (typeof FIXTURE_ATTRS)[number];

/** Builds test/nix/fixture.nix into the store, then hard-links identical files (nix-store --optimise). */
export function buildFixture(store: NixStore): Record<FixtureName, string> {
  const file = path.join(HERE, 'fixture.nix');
  const outs = store.build(file, FIXTURE_ATTRS.flatMap((a) => ['-A', a]));
  if (outs.length !== FIXTURE_ATTRS.length) throw new Error(`oracle: expected ${FIXTURE_ATTRS.length} outputs, got ${outs.join(' ')}`);
  store.run('nix-store', ['--optimise']);
  return Object.fromEntries(FIXTURE_ATTRS.map((a, i) => [a, outs[i]])) as Record<FixtureName, string>;
}

/** closureInfo of `roots`, built by Nix (test/nix/closure-info.nix): the directory with its three files. */
export function buildClosureInfo(store: NixStore, roots: string[]): string {
  const file = path.join(HERE, 'closure-info.nix');
  const list = `[ ${roots.map((r) => `(builtins.storePath ${JSON.stringify(r)})`).join(' ')} ]`;
  const [out] = store.build(file, ['--arg', 'roots', list]);
  return out;
}

/** Every valid path in the store (nix-store --dump-db lists them all), sorted. */
export function validPaths(store: NixStore): string[] {
  const text = store.run('nix-store', ['--dump-db']).stdout.toString();
  const lines = text.split('\n');
  const paths: string[] = [];
  let i = 0;
  while (i < lines.length && lines[i] !== '') {
    paths.push(lines[i]);
    const n = Number(lines[i + 4]);
    i += 5 + n;
  }
  return paths.sort();
}
