// The edk2 variable store (OVMF_VARS.fd), written and read by us. Specs:
// edk2 MdeModulePkg/Include/Guid/VariableFormat.h (VARIABLE_STORE_HEADER,
// AUTHENTICATED_VARIABLE_HEADER, VAR_ADDED...), OvmfPkg VarStore.fdf.inc (the
// file: a firmware volume whose first part is the variable store, then the
// fault-tolerant-write working and spare blocks), PI spec vol. 3
// EFI_FIRMWARE_VOLUME_HEADER, UEFI spec 3.1.3 (EFI_LOAD_OPTION) and 10.3
// (device path nodes: HD 04/01, File 04/04, End 7F/FF).
// The writer keeps every byte of the template up to its last variable (the
// firmware volume header, the store header and the FTW areas are not
// touched), marks a live variable it replaces as deleted, and appends the new
// ones where the free space (0xFF) begins, so edk2 reads them at the next
// boot as variables it had written itself.
import { DiskwrightError } from '../errors.ts';
import { bytesToGuid, guidToBytes } from '../partition/guid.ts';
import { defineStruct } from '../util/struct.ts';

/** PI spec EFI_FIRMWARE_VOLUME_HEADER, up to its first block-map entry. */
const FV_HEADER = defineStruct(56, [
  ['ZeroVector', 0, { bytes: 16 }],
  ['FileSystemGuid', 16, { bytes: 16 }],
  ['FvLength', 32, 'u64'],
  ['Signature', 40, 'u32'],
  ['Attributes', 44, 'u32'],
  ['HeaderLength', 48, 'u16'],
  ['Checksum', 50, 'u16'],
  ['ExtHeaderOffset', 52, 'u16'],
  ['Reserved', 54, 'u8'],
  ['Revision', 55, 'u8'],
]);

const VARIABLE_STORE_HEADER = defineStruct(28, [
  ['Signature', 0, { bytes: 16 }],
  ['Size', 16, 'u32'],
  ['Format', 20, 'u8'],
  ['State', 21, 'u8'],
  ['Reserved', 22, 'u16'],
  ['Reserved1', 24, 'u32'],
]);

const AUTHENTICATED_VARIABLE_HEADER = defineStruct(60, [
  ['StartId', 0, 'u16'],
  ['State', 2, 'u8'],
  ['Reserved', 3, 'u8'],
  ['Attributes', 4, 'u32'],
  ['MonotonicCount', 8, 'u64'],
  ['TimeStamp', 16, { bytes: 16 }],
  ['PubKeyIndex', 32, 'u32'],
  ['NameSize', 36, 'u32'],
  ['DataSize', 40, 'u32'],
  ['VendorGuid', 44, { bytes: 16 }],
]);

/** The store of a firmware built without authenticated variables. */
const VARIABLE_HEADER = defineStruct(32, [
  ['StartId', 0, 'u16'],
  ['State', 2, 'u8'],
  ['Reserved', 3, 'u8'],
  ['Attributes', 4, 'u32'],
  ['NameSize', 8, 'u32'],
  ['DataSize', 12, 'u32'],
  ['VendorGuid', 16, { bytes: 16 }],
]);

export const EFI_SYSTEM_NV_DATA_FV_GUID = 'FFF12B8D-7696-4C8B-A985-2747075B4F50';
export const EFI_VARIABLE_GUID = 'DDCF3616-3275-4164-98B6-FE85707FFE7D';
export const EFI_AUTHENTICATED_VARIABLE_GUID = 'AAF32C78-947B-439A-A180-2E144EC37792';
export const EFI_GLOBAL_VARIABLE_GUID = '8BE4DF61-93CA-11D2-AA0D-00E098032B8C';
const FVH = 0x4856465f; // "_FVH"
const VARIABLE_STORE_FORMATTED = 0x5a;
const VARIABLE_STORE_HEALTHY = 0xfe;
const VARIABLE_DATA = 0x55aa;
export const VAR_IN_DELETED_TRANSITION = 0xfe;
export const VAR_DELETED = 0xfd;
export const VAR_HEADER_VALID_ONLY = 0x7f;
export const VAR_ADDED = 0x3f;

export const EFI_VARIABLE_NON_VOLATILE = 0x1;
export const EFI_VARIABLE_BOOTSERVICE_ACCESS = 0x2;
export const EFI_VARIABLE_RUNTIME_ACCESS = 0x4;
const NV_BS_RT = EFI_VARIABLE_NON_VOLATILE | EFI_VARIABLE_BOOTSERVICE_ACCESS | EFI_VARIABLE_RUNTIME_ACCESS;
export const LOAD_OPTION_ACTIVE = 0x1;

const align4 = (n: number) => (n + 3) & ~3;

export interface EfiVariable {
  name: string;
  /** Vendor GUID as text. */
  guid: string;
  attributes: number;
  data: Buffer;
}

export interface StoredVariable extends EfiVariable {
  /** Where its header starts in the file. */
  offset: number;
  state: number;
  /** VAR_ADDED, or VAR_ADDED in deleted transition (edk2 still reads it then). */
  live: boolean;
}

export interface EfiVarStore {
  /** Firmware volume length and where the store header sits in it. */
  fvLength: number;
  storeOffset: number;
  /** VARIABLE_STORE_HEADER.Size: the store header and its variables. */
  storeSize: number;
  authenticated: boolean;
  variables: StoredVariable[];
  /** Where the free space (0xFF) after the last variable begins. */
  freeOffset: number;
  /** False when the free space holds anything but 0xFF (edk2 then reclaims the store). */
  freeErased: boolean;
}

function notStore(what: string, why: string): never {
  throw new DiskwrightError('INPUT_NOT_IMAGE', `${what} is not an edk2 variable store (${why}); give a firmware's variable-store template such as OVMF_VARS.fd or OVMF_VARS_4M.fd`, { path: what });
}

function corrupt(what: string, why: string): never {
  throw new DiskwrightError('IMAGE_CORRUPT', `${what}: ${why}; the variable store is damaged, start again from the firmware's template`, { path: what });
}

/** True when `head` (the file's first 56 bytes or more) starts a firmware volume holding NV variables. */
export function isEfiVarStore(head: Buffer): boolean {
  if (head.length < FV_HEADER.size) return false;
  const fv = FV_HEADER.decode(head, 0);
  return fv.Signature === FVH && bytesToGuid(fv.FileSystemGuid) === EFI_SYSTEM_NV_DATA_FV_GUID;
}

/** Decodes the store; every size and offset checked against the file before use. */
export function readEfiVars(buf: Buffer, what = 'variable store'): EfiVarStore {
  if (buf.length < FV_HEADER.size) notStore(what, `${buf.length} bytes, shorter than a firmware volume header`);
  if (!isEfiVarStore(buf)) notStore(what, 'no firmware volume with the NV data GUID at its start');
  const fv = FV_HEADER.decode(buf, 0);
  const fvLength = fv.FvLength;
  const storeOffset = fv.HeaderLength;
  if (fvLength > buf.length) {
    throw new DiskwrightError('IMAGE_TRUNCATED', `${what}: the firmware volume is ${fvLength} bytes but the file has ${buf.length}; the file is truncated`, { path: what });
  }
  if (storeOffset < FV_HEADER.size || storeOffset + VARIABLE_STORE_HEADER.size > fvLength) corrupt(what, `firmware volume header length ${storeOffset} is out of range`);
  const sh = VARIABLE_STORE_HEADER.decode(buf, storeOffset);
  const sig = bytesToGuid(sh.Signature);
  if (sig !== EFI_AUTHENTICATED_VARIABLE_GUID && sig !== EFI_VARIABLE_GUID) notStore(what, `the store signature is ${sig}`);
  const storeSize = sh.Size;
  if (sh.Format !== VARIABLE_STORE_FORMATTED || sh.State !== VARIABLE_STORE_HEALTHY) corrupt(what, `store format 0x${sh.Format.toString(16)} state 0x${sh.State.toString(16)}, not formatted and healthy`);
  const storeEnd = storeOffset + storeSize;
  if (storeSize < VARIABLE_STORE_HEADER.size || storeEnd > fvLength) corrupt(what, `store size ${storeSize} does not fit the firmware volume`);
  const authenticated = sig === EFI_AUTHENTICATED_VARIABLE_GUID;
  const hdr = authenticated ? AUTHENTICATED_VARIABLE_HEADER : VARIABLE_HEADER;
  const variables: StoredVariable[] = [];
  let at = align4(storeOffset + VARIABLE_STORE_HEADER.size);
  // Each variable takes at least a header, so the loop ends within the store.
  while (at + hdr.size <= storeEnd && buf.readUInt16LE(at) === VARIABLE_DATA) {
    const h = hdr.decode(buf, at);
    const nameSize = h.NameSize;
    const dataSize = h.DataSize;
    const nameAt = at + hdr.size;
    if (nameSize < 2 || nameSize % 2 || nameAt + nameSize + dataSize > storeEnd) corrupt(what, `variable at byte ${at} has name size ${nameSize} and data size ${dataSize}, past the end of the store`);
    const nameRaw = buf.subarray(nameAt, nameAt + nameSize);
    let end = 0;
    while (end < nameRaw.length && nameRaw.readUInt16LE(end) !== 0) end += 2;
    const state = h.State;
    variables.push({
      offset: at,
      name: nameRaw.toString('utf16le', 0, end),
      guid: bytesToGuid(h.VendorGuid),
      attributes: h.Attributes,
      state,
      live: state === VAR_ADDED || state === (VAR_ADDED & VAR_IN_DELETED_TRANSITION),
      data: Buffer.from(buf.subarray(nameAt + nameSize, nameAt + nameSize + dataSize)),
    });
    at = align4(nameAt + nameSize + dataSize);
  }
  const freeOffset = Math.min(at, storeEnd);
  let freeErased = true;
  for (let i = freeOffset; i < storeEnd; i++) if (buf[i] !== 0xff) { freeErased = false; break; }
  return { fvLength, storeOffset, storeSize, authenticated, variables, freeOffset, freeErased };
}

// ---------------------------------------------------------------- load options

/** HD(): a GPT partition as the firmware finds it. */
export interface HardDrive {
  partitionNumber: number;
  startLba: number;
  sizeLba: number;
  /** The partition's unique GUID (GPT entry), as text. */
  partitionGuid: string;
}

export interface BootEntry {
  /** The #### of Boot####. */
  number: number;
  /** Default "Linux Boot Manager", as bootctl names systemd-boot's entry. */
  description?: string;
  partition: HardDrive;
  /** Backslashed path on that partition, e.g. \EFI\systemd\systemd-bootx64.efi. */
  path: string;
}

function ucs2z(text: string): Buffer {
  return Buffer.from(text + '\0', 'utf16le');
}

function node(type: number, subType: number, body: Buffer): Buffer {
  const n = Buffer.alloc(4 + body.length);
  n[0] = type;
  n[1] = subType;
  n.writeUInt16LE(n.length, 2);
  body.copy(n, 4);
  return n;
}

/** The device path HD(...)/File(...)/End. */
export function devicePath(p: HardDrive, file: string): Buffer {
  const hd = Buffer.alloc(38);
  hd.writeUInt32LE(p.partitionNumber, 0);
  hd.writeBigUInt64LE(BigInt(p.startLba), 4);
  hd.writeBigUInt64LE(BigInt(p.sizeLba), 12);
  guidToBytes(p.partitionGuid).copy(hd, 20);
  hd[36] = 0x02; // MBRType: GPT
  hd[37] = 0x02; // SignatureType: GUID
  return Buffer.concat([node(0x04, 0x01, hd), node(0x04, 0x04, ucs2z(file)), node(0x7f, 0xff, Buffer.alloc(0))]);
}

/** EFI_LOAD_OPTION: Attributes, FilePathListLength, Description, FilePathList (no optional data). */
export function loadOption(e: BootEntry): Buffer {
  const paths = devicePath(e.partition, e.path);
  const head = Buffer.alloc(6);
  head.writeUInt32LE(LOAD_OPTION_ACTIVE, 0);
  head.writeUInt16LE(paths.length, 4);
  return Buffer.concat([head, ucs2z(e.description ?? 'Linux Boot Manager'), paths]);
}

export const bootName = (n: number) => `Boot${n.toString(16).toUpperCase().padStart(4, '0')}`;

export interface DecodedLoadOption {
  attributes: number;
  description: string;
  /** The device path in the UEFI text form, e.g. HD(1,GPT,<guid>,0x800,0x100000)/\EFI\BOOT\BOOTX64.EFI. */
  path: string;
  optionalDataSize: number;
}

/** Decodes Boot#### data, or null when it is not a well-formed load option. */
export function decodeLoadOption(data: Buffer): DecodedLoadOption | null {
  if (data.length < 8) return null;
  const attributes = data.readUInt32LE(0);
  const listLength = data.readUInt16LE(4);
  let at = 6;
  while (at + 1 < data.length && data.readUInt16LE(at) !== 0) at += 2;
  if (at + 1 >= data.length) return null;
  const description = data.toString('utf16le', 6, at);
  const start = at + 2;
  if (start + listLength > data.length) return null;
  const path = decodeDevicePath(data.subarray(start, start + listLength));
  if (path === null) return null;
  return { attributes, description, path, optionalDataSize: data.length - start - listLength };
}

function decodeDevicePath(b: Buffer): string | null {
  const parts: string[] = [];
  let at = 0;
  while (at + 4 <= b.length) {
    const type = b[at];
    const sub = b[at + 1];
    const len = b.readUInt16LE(at + 2);
    if (len < 4 || at + len > b.length) return null;
    const body = b.subarray(at + 4, at + len);
    if (type === 0x7f && sub === 0xff) return parts.join('/');
    if (type === 0x04 && sub === 0x01 && body.length === 38) {
      const sig = body[37] === 2 ? bytesToGuid(body.subarray(20, 36)) : `0x${body.readUInt32LE(20).toString(16)}`;
      parts.push(`HD(${body.readUInt32LE(0)},${body[36] === 2 ? 'GPT' : 'MBR'},${sig},0x${body.readBigUInt64LE(4).toString(16)},0x${body.readBigUInt64LE(12).toString(16)})`);
    } else if (type === 0x04 && sub === 0x04) {
      parts.push(body.toString('utf16le').replace(/\0+$/, ''));
    } else {
      parts.push(`Path(${type},${sub},${body.toString('hex')})`);
    }
    at += len;
  }
  return null;
}

/** BootOrder data as numbers. */
export function decodeBootOrder(data: Buffer): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < data.length; i += 2) out.push(data.readUInt16LE(i));
  return out;
}

// ---------------------------------------------------------------- writer

export interface EfiVarsEntries {
  boot: BootEntry[];
  /** Default: the new entries' numbers first, then the template's BootOrder without them. */
  bootOrder?: number[];
  /** Any other variables to set. */
  variables?: EfiVariable[];
}

function encodeVariable(v: EfiVariable, authenticated: boolean): Buffer {
  const hdr = authenticated ? AUTHENTICATED_VARIABLE_HEADER : VARIABLE_HEADER;
  const name = ucs2z(v.name);
  const out = Buffer.alloc(align4(hdr.size + name.length + v.data.length), 0xff);
  // Zero the header first: fields not set below (time stamp, counts, key index) are 0.
  out.fill(0, 0, hdr.size);
  hdr.encode(out, 0, { StartId: VARIABLE_DATA, State: VAR_ADDED, Reserved: 0, Attributes: v.attributes, NameSize: name.length, DataSize: v.data.length, VendorGuid: guidToBytes(v.guid) });
  name.copy(out, hdr.size);
  v.data.copy(out, hdr.size + name.length);
  return out;
}

/**
 * The template with the entries' Boot#### variables and BootOrder (under
 * the EFI global variable GUID, NV|BS|RT) and any other variables set. Pure.
 */
export function writeEfiVars(template: Buffer, entries: EfiVarsEntries, what = 'variable store template'): Buffer {
  const store = readEfiVars(template, what);
  if (!store.freeErased) corrupt(what, `the free space after the last variable (byte ${store.freeOffset}) is not erased`);
  const seen = new Set<number>();
  for (const e of entries.boot) {
    if (!Number.isInteger(e.number) || e.number < 0 || e.number > 0xffff) throw new DiskwrightError('OPTION_INVALID', `boot entry number ${e.number}: give 0 to 65535 (Boot0000 to BootFFFF)`, {});
    if (seen.has(e.number)) throw new DiskwrightError('OPTION_INVALID', `two boot entries are ${bootName(e.number)}; give each its own number`, {});
    seen.add(e.number);
  }
  const live = (name: string, guid: string) => store.variables.find((v) => v.live && v.name === name && v.guid === guid);
  const oldOrder = live('BootOrder', EFI_GLOBAL_VARIABLE_GUID);
  const order = entries.bootOrder ?? [...entries.boot.map((e) => e.number), ...(oldOrder ? decodeBootOrder(oldOrder.data).filter((n) => !seen.has(n)) : [])];
  const orderData = Buffer.alloc(order.length * 2);
  order.forEach((n, i) => orderData.writeUInt16LE(n, i * 2));
  const vars: EfiVariable[] = [
    ...entries.boot.map((e) => ({ name: bootName(e.number), guid: EFI_GLOBAL_VARIABLE_GUID, attributes: NV_BS_RT, data: loadOption(e) })),
    { name: 'BootOrder', guid: EFI_GLOBAL_VARIABLE_GUID, attributes: NV_BS_RT, data: orderData },
    ...(entries.variables ?? []),
  ];
  const out = Buffer.from(template);
  let at = store.freeOffset;
  const storeEnd = store.storeOffset + store.storeSize;
  // The live copy of each variable (name + GUID), the ones appended here included.
  const current = new Map(store.variables.filter((v) => v.live).map((v) => [`${v.guid}/${v.name}`, v.offset]));
  for (const v of vars) {
    const key = `${bytesToGuid(guidToBytes(v.guid))}/${v.name}`;
    const old = current.get(key);
    // edk2 deletes in two steps (in transition, then deleted): its end state.
    if (old !== undefined) out[old + 2] &= VAR_IN_DELETED_TRANSITION & VAR_DELETED;
    current.set(key, at);
    const bytes = encodeVariable(v, store.authenticated);
    if (at + bytes.length > storeEnd) {
      throw new DiskwrightError('TOO_LARGE', `${what}: the variable store has ${storeEnd - store.freeOffset} bytes free, too few for the new variables; use a larger template (OVMF_VARS_4M.fd)`, { path: what });
    }
    bytes.copy(out, at);
    at += bytes.length;
  }
  return out;
}

// ---------------------------------------------------------------- inspect

export interface EfiVarsSummary {
  authenticated: boolean;
  storeSize: number;
  freeBytes: number;
  /** Variables edk2 had deleted and not yet reclaimed. */
  deleted: number;
  /** The live variables in store order. */
  variables: Array<{
    name: string;
    guid: string;
    /** 0x + 8 hex digits. */
    attributes: string;
    dataSize: number;
    bootOption?: DecodedLoadOption;
    bootOrder?: string[];
  }>;
}

export function summarizeEfiVars(buf: Buffer, what: string): EfiVarsSummary {
  const s = readEfiVars(buf, what);
  return {
    authenticated: s.authenticated,
    storeSize: s.storeSize,
    freeBytes: s.storeOffset + s.storeSize - s.freeOffset,
    deleted: s.variables.filter((v) => !v.live).length,
    variables: s.variables.filter((v) => v.live).map((v) => {
      const out: EfiVarsSummary['variables'][number] = { name: v.name, guid: v.guid, attributes: `0x${v.attributes.toString(16).padStart(8, '0')}`, dataSize: v.data.length };
      if (v.guid === EFI_GLOBAL_VARIABLE_GUID && /^Boot[0-9A-F]{4}$/.test(v.name)) {
        const o = decodeLoadOption(v.data);
        if (o) out.bootOption = o;
      }
      if (v.guid === EFI_GLOBAL_VARIABLE_GUID && v.name === 'BootOrder') out.bootOrder = decodeBootOrder(v.data).map(bootName);
      return out;
    }),
  };
}
