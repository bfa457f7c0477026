// The system a bootloader boots: a NixOS toplevel (config.system.build.toplevel)
// read as NixOS's boot loader builders read it, bootspec v1 `boot.json` first
// (RFC 0125: it names kernel, initrd, init, kernelParams and label, so no Nix
// evaluation is needed), else the toplevel's `kernel`, `initrd`,
// `kernel-params`, `init` and `nixos-version` as bootspec's synthesize reads
// them; or, for systems that are not NixOS, `bootEntries` naming files on the
// build machine. The store may live elsewhere on this machine (`storeDir`):
// every link inside the store is followed through it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DiskwrightError } from '../errors.ts';
import { isStorePathName, physicalPath, resolveInStore, type StoreDirs } from '../nix/store-path.ts';

/** A file to boot: where its bytes are on this machine and, for store files, its path as the store names it. */
export interface BootFile {
  /** Where the bytes are read on this machine. */
  host: string;
  /** `/nix/store/<hash>-<name>/<file>` after every link, or undefined for a file outside the store. */
  storePath?: string;
  size: number;
}

export interface BootEntry {
  /** Loader entry name without .conf. */
  id: string;
  title: string;
  kernel: BootFile;
  initrd?: BootFile;
  /** The whole kernel command line. */
  options: string;
  /** NixOS only: what the entry's `version` line says and `sort-key`. */
  nixos?: { label: string; generation: number };
  /** The toplevel's `dtbs` (device trees), a directory in the store: extlinux copies it and names it in FDTDIR. */
  dtbs?: { host: string; storePath: string };
}

export interface BootSystem {
  /** The toplevel store path, as named under the store dir (for the profile links). */
  toplevel?: string;
  entries: BootEntry[];
}

const MAX_JSON = 1 << 20;
const MAX_HOPS = 40;

/**
 * Where `logical` (a path under nixStoreDir, which may pass through links)
 * ends: the store path of the file after every link, and its bytes on this
 * machine. Undefined when some component does not exist.
 */
export function resolveStoreFile(logical: string, dirs: StoreDirs, what: string): { storePath: string; host: string } | undefined {
  let p = logical;
  for (let hops = 0; hops <= MAX_HOPS; hops++) {
    if (!p.startsWith(dirs.nixStoreDir + '/')) {
      throw new DiskwrightError('STORE_PATH_INVALID', `${what}: ${logical} leads to ${p}, outside the store dir ${dirs.nixStoreDir}; give a system whose files are all in the store`, { path: logical });
    }
    const parts = p.slice(dirs.nixStoreDir.length + 1).split('/').filter((c) => c !== '' && c !== '.');
    if (!parts.length || !isStorePathName(parts[0])) {
      throw new DiskwrightError('STORE_PATH_INVALID', `${what}: ${p} is not inside a store path (<store dir>/<hash>-<name>/...)`, { path: logical });
    }
    let linked: string | undefined;
    for (let i = 1; i <= parts.length; i++) {
      if (parts[i - 1] === '..') {
        throw new DiskwrightError('STORE_PATH_INVALID', `${what}: ${p} has a ".." component; give a plain store path`, { path: logical });
      }
      const host = path.join(physicalPath(dirs, parts[0]), ...parts.slice(1, i));
      let st: fs.Stats;
      try {
        st = fs.lstatSync(host);
      } catch {
        return undefined;
      }
      if (st.isSymbolicLink()) {
        const target = fs.readlinkSync(host);
        const here = `${dirs.nixStoreDir}/${parts.slice(0, i - 1).join('/')}`;
        const rest = parts.slice(i).join('/');
        const joined = target.startsWith('/') ? target : path.posix.join(here, target);
        linked = path.posix.normalize(rest ? `${joined}/${rest}` : joined);
        break;
      }
    }
    if (linked === undefined) return { storePath: `${dirs.nixStoreDir}/${parts.join('/')}`, host: path.join(physicalPath(dirs, parts[0]), ...parts.slice(1)) };
    p = linked;
  }
  throw new DiskwrightError('STORE_PATH_INVALID', `${what}: ${logical}: too many levels of symlinks`, { path: logical });
}

function bootFile(logical: string, dirs: StoreDirs, what: string, fix: string): BootFile {
  const r = resolveStoreFile(logical, dirs, what);
  const st = r && fs.statSync(r.host, { throwIfNoEntry: false });
  if (!r || !st) throw new DiskwrightError('STORE_PATH_MISSING', `${what}: ${logical} does not exist; ${fix}`, { path: logical });
  if (!st.isFile()) throw new DiskwrightError('STORE_PATH_INVALID', `${what}: ${logical} is not a file; ${fix}`, { path: logical });
  return { host: r.host, storePath: r.storePath, size: st.size };
}

/** A small text file of the toplevel, or undefined when it is absent. */
export function readSmall(logical: string, dirs: StoreDirs, what: string): string | undefined {
  const r = resolveStoreFile(logical, dirs, what);
  if (!r) return undefined;
  const st = fs.statSync(r.host, { throwIfNoEntry: false });
  if (!st?.isFile()) return undefined;
  if (st.size > MAX_JSON) throw new DiskwrightError('STORE_PATH_INVALID', `${what}: ${logical} is ${st.size} bytes, more than a system's metadata file holds; check the toplevel`, { path: logical });
  return fs.readFileSync(r.host, 'utf8');
}

interface Bootspec {
  kernel: string;
  initrd?: string;
  init: string;
  kernelParams: string[];
  label: string;
}

function parseBootspec(text: string, where: string): Bootspec {
  const bad = (why: string): never => {
    throw new DiskwrightError('CONFIG_INVALID', `toplevel: ${where} ${why}; rebuild the system or remove boot.json`, { path: where });
  };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    bad('is not JSON');
  }
  const v1 = (doc as Record<string, unknown> | null)?.['org.nixos.bootspec.v1'] as Record<string, unknown> | undefined;
  if (!v1 || typeof v1 !== 'object') return bad('has no "org.nixos.bootspec.v1" object');
  const str = (k: string, optional = false) => {
    const v = v1[k];
    if (v === undefined && optional) return undefined;
    if (typeof v !== 'string' || v === '') bad(`has no string "${k}"`);
    return v as string;
  };
  const params = v1.kernelParams;
  if (!Array.isArray(params) || !params.every((p) => typeof p === 'string')) bad('has no string array "kernelParams"');
  return { kernel: str('kernel')!, initrd: str('initrd', true), init: str('init')!, kernelParams: params as string[], label: str('label')! };
}

/** The kernel version bootspec's synthesize puts in the label: the one directory of kernel-modules/lib/modules. */
export function kernelVersion(top: string, dirs: StoreDirs): string | undefined {
  const r = resolveStoreFile(`${top}/kernel-modules/lib/modules`, dirs, 'toplevel');
  if (!r) return undefined;
  try {
    const names = fs.readdirSync(r.host).sort();
    return names.length === 1 ? names[0] : undefined;
  } catch {
    return undefined;
  }
}

/** Reads a NixOS toplevel: `arg` as the config gives it (a store path or a link to one). */
export function readToplevel(arg: string, dirs: StoreDirs): BootSystem {
  const { name, rest } = resolveInStore(arg, dirs);
  if (rest !== '') throw new DiskwrightError('STORE_PATH_INVALID', `toplevel ${arg} is a file inside ${dirs.nixStoreDir}/${name}; give the system's store path itself`, { toplevel: arg });
  const top = `${dirs.nixStoreDir}/${name}`;
  const json = readSmall(`${top}/boot.json`, dirs, 'toplevel');
  let spec: Bootspec;
  if (json !== undefined) {
    spec = parseBootspec(json, `${top}/boot.json`);
  }
  else {
    const has = (f: string) => resolveStoreFile(`${top}/${f}`, dirs, 'toplevel') !== undefined;
    for (const f of ['kernel', 'initrd', 'init']) {
      if (!has(f)) throw new DiskwrightError('STORE_PATH_INVALID', `toplevel ${top} has no ${f} (and no boot.json); give the store path of a NixOS system (config.system.build.toplevel)`, { toplevel: top, missing: f });
    }
    const params = readSmall(`${top}/kernel-params`, dirs, 'toplevel') ?? '';
    const version = (readSmall(`${top}/nixos-version`, dirs, 'toplevel') ?? '').trim();
    const kver = kernelVersion(top, dirs);
    spec = {
      kernel: `${top}/kernel`,
      initrd: `${top}/initrd`,
      init: `${top}/init`,
      kernelParams: params.split(/\s+/).filter((p) => p !== ''),
      label: `NixOS ${version || 'unknown'}${kver ? ` (Linux ${kver})` : ''}`,
    };
  }
  if (spec.initrd === undefined) throw new DiskwrightError('STORE_PATH_INVALID', `toplevel ${top}: boot.json names no initrd; NixOS systems boot with one, rebuild the system`, { toplevel: top });
  const fix = 'rebuild the system or give its full closure in storeDir';
  const kernel = bootFile(spec.kernel, dirs, `toplevel ${top}: kernel`, fix);
  const initrd = bootFile(spec.initrd, dirs, `toplevel ${top}: initrd`, fix);
  const options = `init=${spec.init} ${spec.kernelParams.join(' ')}`;
  const entry: BootEntry = { id: 'nixos-generation-1', title: 'NixOS', kernel, initrd, options, nixos: { label: spec.label, generation: 1 } };
  const dtbs = readDtbs(top, name, dirs);
  if (dtbs) entry.dtbs = dtbs;
  return { toplevel: top, entries: [entry] };
}

/**
 * The toplevel's optional `dtbs` link (hardware.deviceTree's package, or the
 * kernel's dtbs): absent is fine, but a link that leads nowhere or to a file
 * is a broken system, not one without device trees.
 */
function readDtbs(top: string, name: string, dirs: StoreDirs): BootEntry['dtbs'] {
  const link = path.join(physicalPath(dirs, name), 'dtbs');
  if (!fs.lstatSync(link, { throwIfNoEntry: false })) return undefined;
  const r = resolveStoreFile(`${top}/dtbs`, dirs, `toplevel ${top}: dtbs`);
  const st = r && fs.statSync(r.host, { throwIfNoEntry: false });
  const fix = 'rebuild the system or give its full closure in storeDir';
  if (!r || !st) throw new DiskwrightError('STORE_PATH_MISSING', `toplevel ${top}: dtbs points to ${readLink(link)}, which does not exist; ${fix}`, { path: `${top}/dtbs` });
  if (!st.isDirectory()) throw new DiskwrightError('STORE_PATH_INVALID', `toplevel ${top}: dtbs (${r.storePath}) is not a directory of device trees; ${fix}`, { path: `${top}/dtbs` });
  return { host: r.host, storePath: r.storePath };
}

function readLink(p: string): string {
  try {
    return fs.readlinkSync(p);
  } catch {
    return p;
  }
}

export interface BootEntryConfig {
  title: string;
  kernel: string;
  initrd?: string;
  cmdline: string;
  id?: string;
}

/** `bootEntries`: files on the build machine, relative names against the config's directory. */
export function readBootEntries(list: BootEntryConfig[], baseDir: string): BootSystem {
  const ids = new Set<string>();
  const entries = list.map((e, i): BootEntry => {
    const key = `bootEntries[${i}]`;
    const id = e.id ?? `entry-${i + 1}`;
    if (ids.has(id)) throw new DiskwrightError('CONFIG_INVALID', `${key}: id "${id}" is used twice; give each entry its own id`, { id });
    ids.add(id);
    const file = (p: string, k: string): BootFile => {
      const host = path.resolve(baseDir, p);
      const st = fs.statSync(host, { throwIfNoEntry: false });
      if (!st?.isFile()) throw new DiskwrightError('SOURCE_MISSING', `${key}.${k}: ${p} is not a file; give the path of the ${k} on this machine`, { path: p });
      return { host, size: st.size };
    };
    return { id, title: e.title, kernel: file(e.kernel, 'kernel'), initrd: e.initrd === undefined ? undefined : file(e.initrd, 'initrd'), options: e.cmdline };
  });
  return { entries };
}
