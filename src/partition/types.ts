// Partition type identifiers.
// GPT: UEFI 2.10 §5.3.3 Table 5.7 (ESP), the Discoverable Partitions Spec
// https://uapi-group.org/specifications/specs/discoverable_partitions_specification/
// (root per architecture, XBOOTLDR), and the well-known BIOS boot / Microsoft ones.
// MBR: https://en.wikipedia.org/wiki/Partition_type
import { DiskwrightError } from '../api/errors.ts';
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
  const cpu = system.split('-')[0];
  const arch = Object.hasOwn(GPT_ROOT_TYPE, system) ? (system as RootArch) : Object.hasOwn(NIX_CPU, cpu) ? NIX_CPU[cpu] : undefined;
  if (!arch) {
    throw new DiskwrightError('PARTITION_INVALID', `no Discoverable Partitions root type for system "${system}"; known: ${Object.keys(NIX_CPU).map((c) => `${c}-linux`).join(', ')}`, { system });
  }
  return GPT_ROOT_TYPE[arch];
}

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
