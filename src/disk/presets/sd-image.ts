// NixOS's sd-image.nix as a preset (`builder: sd-image`), with its option
// names and defaults: an MBR whose disk signature is firmwarePartitionID, a
// FAT firmware partition (type 0x0b) of firmwareSize MiB at
// firmwarePartitionOffset MiB whose volume id is firmwarePartitionID too (as
// `mkfs.vfat -i ID -n NAME` makes it), then the ext4 root (type 0x83,
// bootable: U-Boot's distro boot scans bootable partitions) to the end of the
// disk. Unlike sd-image, which guesses, the root is sized exactly for its
// content plus additionalSpace. populateFirmwareCommands / populateRootCommands
// become firmwareContents / rootContents, postBuildCommands' dd of U-Boot
// becomes postBuildBlobs. A `toplevel` goes into the root's store and boots
// through extlinux in the root's /boot, as sd-image.nix's populateRootCommands
// runs the generic-extlinux-compatible builder.
import { z } from 'zod';
import { PASSED_THROUGH, passedThrough } from './make-ext4-fs.ts';
import { parseUuid } from '../../util/ids.ts';
import { rawBlob } from '../../config/schema.ts';

const uuid = z.string().refine((v) => parseUuid(v) !== null, { message: 'expected a UUID like 44444444-4444-4444-8888-888888888888' });
const owner = z.union([z.string().min(1), z.number().int().nonnegative()]);
const entry = z.strictObject({ source: z.string().min(1), target: z.string().min(1), mode: z.string().optional(), user: owner.optional(), group: owner.optional() });
const mib = z.number().int().positive();

export const sdImageSchema = z.strictObject({
  builder: z.literal('sd-image'),
  firmwarePartitionOffset: mib.default(8),
  firmwareSize: mib.default(30),
  firmwarePartitionName: z.string().default('FIRMWARE'),
  firmwarePartitionID: z.string().regex(/^0x[0-9a-fA-F]{1,8}$/, 'expected 0x and up to 8 hex digits such as "0x2178694e"').default('0x2178694e'),
  rootVolumeLabel: z.string().default('NIXOS_SD'),
  /** make-ext4-fs's default when sd-image leaves it null. */
  rootPartitionUUID: uuid.default('44444444-4444-4444-8888-888888888888'),
  imageBaseName: z.string().regex(/^[^/\0]+$/, 'expected a file name without slashes').default('nixos-sd-image'),
  compressImage: z.boolean().default(true),
  expandOnBoot: z.boolean().default(true),
  firmwareContents: z.array(entry).default([]),
  rootContents: z.array(entry).default([]),
  storePaths: z.array(z.string().min(1)).default([]),
  postBuildBlobs: z.array(rawBlob).max(64).default([]),
  // diskwright's own, with the build config's meaning
  additionalSpace: z.union([z.number().int().nonnegative(), z.string()]).default('16M'),
  system: z.string().optional(),
  // booting, with the build config's meaning; NixOS's ARM images boot through U-Boot's extlinux support
  toplevel: z.string().min(1).optional(),
  bootEntries: z.array(z.unknown()).optional(),
  installBootLoader: z.boolean().optional(),
  bootLoader: z.string().default('extlinux'),
  timeout: z.number().optional(),
  ...passedThrough,
});

export type SdImageConfig = z.output<typeof sdImageSchema>;

const MiB = 2 ** 20;

/** The equivalent build config: a custom MBR layout (still to be validated by the build schema). */
export function fromSdImage(c: SdImageConfig): Record<string, unknown> {
  const id = c.firmwarePartitionID.replace(/^0x/i, '');
  const out: Record<string, unknown> = {
    preset: 'sd-image',
    partitionTableType: 'mbr',
    diskSignature: id,
    baseName: c.imageBaseName,
    compress: c.compressImage ? 'zstd' : 'none',
    // NixOS's first-boot script grows the root and loads the store database only when this file is there.
    nixPathRegistration: c.expandOnBoot ? '/nix-path-registration' : false,
    partitions: [
      {
        type: '0x0b',
        start: c.firmwarePartitionOffset * MiB,
        size: c.firmwareSize * MiB,
        fs: 'vfat',
        fsLabel: c.firmwarePartitionName,
        volumeId: id,
        contents: c.firmwareContents,
      },
      {
        type: '0x83',
        bootable: true,
        grow: true,
        start: (c.firmwarePartitionOffset + c.firmwareSize) * MiB,
        fs: 'ext4',
        fsLabel: c.rootVolumeLabel,
        fsUuid: c.rootPartitionUUID,
        freeSpace: c.additionalSpace,
        contents: c.rootContents,
        storePaths: c.storePaths,
      },
    ],
    rawBlobs: c.postBuildBlobs,
  };
  for (const k of ['system', 'toplevel', 'bootEntries', 'installBootLoader', 'bootLoader', 'timeout', ...PASSED_THROUGH] as const) {
    if (c[k] !== undefined) out[k] = c[k];
  }
  return out;
}

/** sd-image's message for firmware files that do not fit: the firmwareSize that works. */
export function firmwareTooSmall(firmwareSize: number, need: number): string {
  return `firmwareSize ${firmwareSize} (MiB) is too small for firmwareContents; they need at least ${Math.ceil(need / MiB)} (MiB)`;
}
