// Partition type identifiers.
// GPT: UEFI 2.10 §5.3.3 Table 5.7 (ESP), the Discoverable Partitions Spec
// https://uapi-group.org/specifications/specs/discoverable_partitions_specification/
// (root per architecture, XBOOTLDR), and the well-known BIOS boot / Microsoft ones.
// MBR: https://en.wikipedia.org/wiki/Partition_type
import { DiskwrightError } from '../errors.ts';
import { guidToBytes } from './guid.ts';

/** GPT partition type GUIDs (text form). */
export const GPT_TYPE = {
  esp: 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
  /** GRUB's core.img on BIOS + GPT ("bios_grub" in parted, EF02 in gdisk). */
  biosBoot: '21686148-6449-6E6F-744E-656564454649',
  /** Extended Boot Loader partition, /boot next to the ESP. */
  xbootldr: 'BC13C2FF-59E6-4262-A352-B275FD6F7172',
  linuxData: '0FC63DAF-8483-4772-8E79-3D69D8477DE4',
  microsoftBasicData: 'EBD0A0A2-B9E5-4433-87C0-68B6B72699C7',
} as const;

/** Discoverable Partitions Spec root partition types, keyed by DPS/systemd architecture name. */
export const GPT_ROOT_TYPE = {
  'x86-64': '4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709',
  arm64: 'B921B045-1DF0-41C3-AF44-4C6F280D3FAE',
  x86: '44479540-F297-41B2-9AF7-D131D5F0458A',
  arm: '69DAD710-2CE4-4E3C-B16C-21A1D49ABED3',
  riscv64: '72EC70A6-CF74-40E6-BD49-4BDA08E8F224',
  loongarch64: '77055800-792C-4F94-B39A-98C91B762BB6',
  'ppc64-le': 'C31C45E6-3F39-412E-80FB-4809C4980599',
  s390x: '5EEAD9A9-FE09-4A1E-A1D7-520D00531306',
} as const;

export type RootArch = keyof typeof GPT_ROOT_TYPE;

/** Discoverable Partitions Spec /usr partition types, keyed like GPT_ROOT_TYPE. */
export const GPT_USR_TYPE: Record<RootArch, string> = {
  'x86-64': '8484680C-9521-48C6-9C11-B0720656F69E',
  arm64: 'B0E01050-EE5F-4390-949A-9101B17104E9',
  x86: '75250D76-8CC6-458E-BD66-BD47CC81A812',
  arm: '7D0359A3-02B3-4F0A-865C-654403E70625',
  riscv64: 'BEAEC34B-8442-439B-A40B-984381ED097D',
  loongarch64: 'E611C702-575C-4CBE-9A46-434FA0BF7E3F',
  'ppc64-le': '15BB03AF-77E7-4D4A-B12B-C0D084F7491C',
  s390x: '8A4F5770-50AA-4ED3-874A-99B710DB6FEA',
};

/** Nix CPU names (the part of `x86_64-linux` before the dash) to DPS architectures. */
const NIX_CPU: Record<string, RootArch> = {
  x86_64: 'x86-64',
  aarch64: 'arm64',
  i686: 'x86',
  armv7l: 'arm',
  armv6l: 'arm',
  riscv64: 'riscv64',
  loongarch64: 'loongarch64',
  powerpc64le: 'ppc64-le',
  s390x: 's390x',
};

/** The DPS root partition type for a Nix system (`x86_64-linux`), a Nix CPU name or a DPS architecture. */
export function rootTypeGuid(system: string): string {
  return GPT_ROOT_TYPE[dpsArch(system)];
}

/** The DPS /usr partition type for a system, as rootTypeGuid. */
export function usrTypeGuid(system: string): string {
  return GPT_USR_TYPE[dpsArch(system)];
}

function dpsArch(system: string): RootArch {
  const cpu = system.split('-')[0];
  const arch = Object.hasOwn(GPT_ROOT_TYPE, system) ? (system as RootArch) : Object.hasOwn(NIX_CPU, cpu) ? NIX_CPU[cpu] : undefined;
  if (!arch) {
    throw new DiskwrightError('PARTITION_INVALID', `no Discoverable Partitions root type for system "${system}"; known: ${Object.keys(NIX_CPU).map((c) => `${c}-linux`).join(', ')}`, { system });
  }
  return arch;
}

/** Discoverable Partitions types of the other well-known mount points, and swap. */
export const GPT_DPS_TYPE = {
  home: '933AC7E1-2EB4-4F13-B844-0E14E2AEF915',
  srv: '3B8F8425-20E0-4F3B-907F-1A25A76F98E8',
  var: '4D21B016-B534-45C2-A9FB-5C16E091FD2D',
  tmp: '7EC6F557-3BC5-4ACA-B293-16EF5DF639D1',
  swap: '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F',
} as const;

/** MBR partition type bytes. */
export const MBR_TYPE = {
  fat12: 0x01,
  fat16: 0x06,
  /** FAT32 with CHS addressing. */
  fat32: 0x0b,
  /** FAT32 with LBA addressing: what firmware and Linux expect today. */
  fat32Lba: 0x0c,
  linux: 0x83,
  /** Extended Boot Loader partition on MBR disks (Boot Loader Spec). */
  xbootldr: 0xea,
  /** ESP on MBR disks. */
  efi: 0xef,
  /** The protective entry that marks a disk as GPT. */
  gptProtective: 0xee,
} as const;

const same = (a: string, b: string) => guidToBytes(a).equals(guidToBytes(b));

/**
 * The MBR type that mirrors a GPT type in a hybrid MBR, as gdisk suggests it;
 * undefined when there is no obvious one (the caller must say).
 */
export function mbrTypeForGpt(typeGuid: string): number | undefined {
  if (same(typeGuid, GPT_TYPE.esp) || same(typeGuid, GPT_TYPE.biosBoot)) return MBR_TYPE.efi;
  if (same(typeGuid, GPT_TYPE.xbootldr)) return MBR_TYPE.xbootldr;
  if (same(typeGuid, GPT_TYPE.microsoftBasicData)) return 0x07;
  if (same(typeGuid, GPT_TYPE.linuxData) || Object.values(GPT_ROOT_TYPE).some((t) => same(typeGuid, t))) return MBR_TYPE.linux;
  return undefined;
}

// Friendly names, as util-linux fdisk/sfdisk print them (for readers: inspect, ls).
const GPT_TYPE_NAMES: Record<string, string> = {
  [GPT_TYPE.esp]: 'EFI System',
  [GPT_TYPE.biosBoot]: 'BIOS boot',
  [GPT_TYPE.xbootldr]: 'Linux extended boot',
  [GPT_TYPE.linuxData]: 'Linux filesystem',
  [GPT_TYPE.microsoftBasicData]: 'Microsoft basic data',
  [GPT_ROOT_TYPE['x86-64']]: 'Linux root (x86-64)',
  [GPT_ROOT_TYPE.arm64]: 'Linux root (ARM-64)',
  [GPT_ROOT_TYPE.x86]: 'Linux root (x86)',
  [GPT_ROOT_TYPE.arm]: 'Linux root (ARM)',
  [GPT_ROOT_TYPE.riscv64]: 'Linux root (RISC-V-64)',
  [GPT_ROOT_TYPE.loongarch64]: 'Linux root (LoongArch-64)',
  [GPT_ROOT_TYPE['ppc64-le']]: 'Linux root (PPC64LE)',
  [GPT_ROOT_TYPE.s390x]: 'Linux root (S390X)',
  '0657FD6D-A4AB-43C4-84E5-0933C84B4F4F': 'Linux swap',
  'E6D6D379-F507-44C2-A23C-238F2A3DF928': 'Linux LVM',
  'A19D880F-05FC-4D3B-A006-743F0F84911E': 'Linux RAID',
  '933AC7E1-2EB4-4F13-B844-0E14E2AEF915': 'Linux home',
  '3B8F8425-20E0-4F3B-907F-1A25A76F98E8': 'Linux server data',
  '8DA63339-0007-60C0-C436-083AC8230908': 'Linux reserved',
  'E3C9E316-0B5C-4DB8-817D-F92DF00215AE': 'Microsoft reserved',
  'DE94BBA4-06D1-4D40-A16A-BFD50179D6AC': 'Windows recovery environment',
  '024DEE41-33E7-11D3-9D69-0008C781F39F': 'MBR partition scheme',
};

const MBR_TYPE_NAMES: Record<number, string> = {
  0x00: 'Empty',
  0x01: 'FAT12',
  0x04: 'FAT16 <32M',
  0x05: 'Extended',
  0x06: 'FAT16',
  0x07: 'HPFS/NTFS/exFAT',
  0x0b: 'W95 FAT32',
  0x0c: 'W95 FAT32 (LBA)',
  0x0e: 'W95 FAT16 (LBA)',
  0x0f: "W95 Ext'd (LBA)",
  0x82: 'Linux swap / Solaris',
  0x83: 'Linux',
  0x85: 'Linux extended',
  0x8e: 'Linux LVM',
  0xa5: 'FreeBSD',
  0xa6: 'OpenBSD',
  0xa9: 'NetBSD',
  0xda: 'Non-FS data',
  0xea: 'Linux extended boot',
  0xee: 'GPT',
  0xef: 'EFI (FAT-12/16/32)',
  0xfd: 'Linux raid autodetect',
};

/** A GPT type GUID's name ("EFI System"), or "unknown". */
export function gptTypeName(typeGuid: string): string {
  return GPT_TYPE_NAMES[typeGuid.toUpperCase()] ?? 'unknown';
}

/** An MBR type byte's name ("Linux"), or "unknown". */
export function mbrTypeName(type: number): string {
  return MBR_TYPE_NAMES[type] ?? 'unknown';
}
