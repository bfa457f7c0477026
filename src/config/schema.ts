// The build config: make-disk-image's options (same names, same defaults) plus
// diskwright's own (seed, epoch, labels), as one zod schema. The schema is the
// single source of the config's TypeScript types, so `defineImage({...})` in a
// .ts config is checked by the editor the same way the CLI checks JSON.
import { z } from 'zod';
import { parseSize } from '../util/sizes.ts';
import { parseUuid } from '../util/ids.ts';
import { COMPRESSIONS, FORMATS } from '../format/output.ts';
import { EXT4_MAX_TIME } from '../fs/ext4/inode.ts';
import { ID_MAX } from '../tree/model.ts';

export const PARTITION_TABLE_TYPES = ['legacy', 'legacy+boot', 'legacy+gpt', 'efi', 'efixbootldr', 'hybrid', 'none', 'gpt', 'mbr'] as const;
export type PartitionTableType = (typeof PARTITION_TABLE_TYPES)[number];

/** Nix system names whose Discoverable Partitions root type GUID we know. */
export const SYSTEMS = ['x86_64-linux', 'i686-linux', 'aarch64-linux', 'armv7l-linux', 'riscv64-linux', 'loongarch64-linux', 'powerpc64le-linux', 's390x-linux'] as const;

/** A size: "512M", "1G" (IEC: M = MiB), or a number of bytes. */
const size = z.union([z.number().int().nonnegative(), z.string()]).refine(
  (v) => typeof v === 'number' || parseSize(v) !== null,
  { message: 'expected a size such as "512M" or "1G" (IEC units) or a number of bytes' },
);

const uuid = z.string().refine((v) => parseUuid(v) !== null, { message: 'expected a UUID like F222513B-DED1-49FA-B591-20CE86A2FE7F' });
const hex32 = z.string().regex(/^(0x)?[0-9a-fA-F]{1,8}$/, 'expected up to 8 hex digits such as "1234ABCD"');
const ID_MESSAGE = `expected a name, or a number from 0 to ${ID_MAX} (ext4 stores 32-bit ids)`;
export const owner = z.union([
  z.string().min(1).refine((v) => !/^\d+$/.test(v) || Number(v) <= ID_MAX, { message: ID_MESSAGE }),
  z.number().int().nonnegative().max(ID_MAX, { message: ID_MESSAGE }),
]);

/** A contents entry, as make-disk-image takes it (also the container config's). */
export const content = z.strictObject({
  source: z.string().min(1),
  target: z.string().min(1),
  mode: z.string().optional(),
  user: owner.optional(),
  group: owner.optional(),
});

const bootContent = z.strictObject({
  source: z.string().min(1),
  target: z.string().min(1),
});

/** Bytes written at a byte offset of the disk (U-Boot SPL, idbloader, a vendor header). */
export const rawBlob = z.strictObject({
  source: z.string().min(1),
  offset: size,
  maxSize: size.optional(),
});

/** One partition of a custom layout (`partitions: [...]`). */
const partition = z.strictObject({
  /** GPT partition name. */
  label: z.string().optional(),
  /** A GPT type GUID, an MBR type byte (mbr) or an alias: esp, xbootldr, bios-boot, linux, root, usr, home, srv, var, tmp, swap. */
  type: z.string().min(1).default('linux'),
  /** GPT partition GUID; default from the seed and the label. */
  uuid: uuid.optional(),
  start: size.optional(),
  size: size.optional(),
  minSize: size.optional(),
  maxSize: size.optional(),
  grow: z.boolean().default(false),
  bootable: z.boolean().default(false),
  legacyBootable: z.boolean().default(false),
  growFileSystem: z.boolean().default(false),
  readOnly: z.boolean().default(false),
  noAuto: z.boolean().default(false),
  fs: z.enum(['ext4', 'vfat', 'none']).default('none'),
  /** A prepared filesystem image (any format diskwright reads) copied in as it is. */
  image: z.string().min(1).optional(),
  fsLabel: z.string().optional(),
  fsUuid: uuid.optional(),
  volumeId: hex32.optional(),
  fatType: z.union([z.literal(12), z.literal(16), z.literal(32)]).optional(),
  freeSpace: size.default(0),
  freeInodes: z.number().int().nonnegative().default(0),
  root: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
  contents: z.array(content).default([]),
  storePaths: z.array(z.string().min(1)).default([]),
});
export type PartitionConfig = z.output<typeof partition>;

/** A boot entry of a system that is not NixOS: files on the build machine. */
const bootEntry = z.strictObject({
  title: z.string().min(1).regex(/^[^\n]*$/, 'expected one line'),
  kernel: z.string().min(1),
  initrd: z.string().min(1).optional(),
  cmdline: z.string().regex(/^[^\n]*$/, 'expected one line').default(''),
  /** The loader entry's file name without .conf; default entry-<n>. */
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected letters, digits, ".", "_" or "-"').optional(),
});

export const BOOT_LOADERS = ['auto', 'systemd-boot', 'grub', 'extlinux', 'none'] as const;

export const imageConfigSchema = z.strictObject({
  // make-disk-image
  partitionTableType: z.enum(PARTITION_TABLE_TYPES).default('legacy'),
  diskSize: z.union([z.literal('auto'), z.number().int().positive()]).default('auto'),
  additionalSpace: size.default('512M'),
  bootSize: size.default('256M'),
  fsType: z.literal('ext4').default('ext4'),
  label: z.string().default('nixos'),
  name: z.string().default('nixos-disk-image'),
  baseName: z.string().regex(/^[^/\0]+$/, 'expected a file name without slashes').default('nixos'),
  format: z.enum(FORMATS).default('raw'),
  compress: z.enum(COMPRESSIONS).default('none'),
  /** zstd 1-19 (default 3), xz 0-9 (default 6); checked against the method by checkOutput. */
  compressLevel: z.number().int().min(0).max(19).optional(),
  deterministic: z.boolean().default(true),
  rootGPUID: uuid.default('F222513B-DED1-49FA-B591-20CE86A2FE7F'),
  rootFSUID: uuid.optional(),
  rootFSHashSeed: uuid.optional(),
  contents: z.array(content).default([]),
  // Nix store closures (make-disk-image, make-ext4-fs)
  storePaths: z.array(z.string().min(1)).default([]),
  additionalPaths: z.array(z.string().min(1)).default([]),
  onlyNixStore: z.boolean().default(false),
  nixPathRegistration: z.union([z.string().regex(/^\//, 'expected an absolute path in the image such as /nix-path-registration'), z.literal(false)]).default('/nix-path-registration'),
  storeDir: z.string().min(1).optional(),
  nixStoreDir: z.string().regex(/^\/./, 'expected an absolute directory such as /nix/store').default('/nix/store'),
  storeReferences: z.string().min(1).optional(),
  /** Register the store closure in /nix/var/nix/db on the root filesystem (as nixos-install does), so the booted system needs no `nix-store --load-db`. */
  nixDatabase: z.boolean().default(false),
  // diskwright
  root: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
  espContents: z.array(bootContent).default([]),
  xbootldrContents: z.array(bootContent).default([]),
  espLabel: z.string().optional(),
  xbootldrLabel: z.string().default('BOOT'),
  espVolumeId: hex32.optional(),
  xbootldrVolumeId: hex32.optional(),
  diskSignature: hex32.optional(),
  rootPartitionType: z.enum(['linux', 'root']).default('linux'),
  system: z.enum(SYSTEMS).default('x86_64-linux'),
  seed: z.string().default('diskwright'),
  epoch: z.number().int().nonnegative().max(EXT4_MAX_TIME, { message: `expected seconds from 0 to ${EXT4_MAX_TIME}, the latest time ext4 stores (2446-05-10)` }).optional(),
  clampMtime: z.boolean().default(false),
  preserveOwners: z.boolean().default(false),
  freeInodes: z.number().int().nonnegative().default(0),
  bytesPerInode: z.number().int().refine((v) => v === 0 || (v >= 1024 && v <= 67108864), { message: 'expected 0 or 1024..67108864 (bytes per inode, as mke2fs -i)' }).default(16384),
  /** With partitionTableType none and diskSize auto: the filesystem exactly its smallest size plus additionalSpace, in 4 KiB blocks, not rounded up to a MiB (make-ext4-fs). */
  exactSize: z.boolean().default(false),
  /** Set by a preset that translates into a custom layout (sd-image), for its messages and the layout's name. */
  preset: z.literal('sd-image').optional(),
  // booting (NixOS's boot.loader options where they exist)
  /** A NixOS system's store path (config.system.build.toplevel): its closure goes in the store, its kernel and initrd to the boot partition. */
  toplevel: z.string().min(1).optional(),
  bootEntries: z.array(bootEntry).min(1).max(64).optional(),
  /** make-disk-image's option; default true when toplevel or bootEntries is given. */
  installBootLoader: z.boolean().optional(),
  bootLoader: z.enum(BOOT_LOADERS).default('auto'),
  systemdBoot: z.strictObject({
    /** Default: <toplevel>/systemd/lib/systemd/boot/efi/systemd-boot<arch>.efi. */
    efiFile: z.string().min(1).optional(),
    /** boot.loader.systemd-boot.extraEntries: loader/entries/<name> (a .conf name) -> its text. */
    extraEntries: z.record(z.string(), z.string()).default({}),
    /** boot.loader.systemd-boot.extraFiles: a path on the boot partition -> a file on the build machine. */
    extraFiles: z.record(z.string(), z.string().min(1)).default({}),
    /** Default: <toplevel>/systemd/lib/systemd/boot/efi/linux<arch>.efi.stub; the stub of a UKI (uki). */
    stubFile: z.string().min(1).optional(),
  }).prefault({}),
  /** Write a unified kernel image (EFI/Linux/<name>.efi) instead of a type #1 entry with the kernel and initrd beside it. */
  uki: z.boolean().default(false),
  /** GRUB for BIOS (boot.loader.grub's names). */
  grub: z.strictObject({
    /** GRUB's i386-pc directory (${grub2}/lib/grub/i386-pc): boot.img, diskboot.img, lzma_decompress.img, kernel.img, *.mod, *.lst. Required for GRUB. */
    modulesDir: z.string().min(1).optional(),
    /** grub.cfg lines after the header, before the entries. */
    extraConfig: z.string().default(''),
    /** grub.cfg text after the NixOS entry (menuentry blocks). */
    extraEntries: z.string().default(''),
  }).prefault({}),
  /** boot.loader.timeout: seconds the menu waits. */
  timeout: z.number().int().nonnegative().max(1000000).default(5),
  /** boot.loader.systemd-boot.consoleMode. */
  consoleMode: z.enum(['0', '1', '2', '5', 'auto', 'max', 'keep']).default('keep'),
  /** boot.loader.systemd-boot.editor: false writes `editor 0`. */
  editor: z.boolean().default(true),
  /** make-disk-image: write OUTDIR/efi-vars.fd from efiVariables with a Boot0001 entry for systemd-boot. */
  touchEFIVars: z.boolean().default(false),
  /** The firmware's variable-store template (OVMF_VARS.fd, OVMF_VARS_4M.fd); required with touchEFIVars. */
  efiVariables: z.string().min(1).optional(),
  /** make-disk-image: copied to /etc/nixos/configuration.nix on the root. */
  configFile: z.string().min(1).optional(),
  // custom layouts
  /** The disk's partitions, in partition-number order; partitionTableType then says the table kind (gpt, mbr, hybrid). */
  partitions: z.array(partition).max(128).optional(),
  rawBlobs: z.array(rawBlob).max(64).default([]),
  /** Where auto-placed partitions start and auto-sized ones end. */
  alignment: size.default('1M'),
}).superRefine((c, ctx) => {
  if (!c.partitions && (c.partitionTableType === 'gpt' || c.partitionTableType === 'mbr')) {
    ctx.addIssue({ code: 'custom', path: ['partitionTableType'], message: `"${c.partitionTableType}" is a table kind for partitions: [...]; without partitions use a make-disk-image layout: ${PARTITION_TABLE_TYPES.slice(0, 7).join(', ')}` });
  }
});

/** What a config file may say (defaults not yet applied). */
export type ImageConfigInput = z.input<typeof imageConfigSchema>;
/** A validated config with every default filled in. */
export type ImageConfig = z.output<typeof imageConfigSchema>;

/** Typed identity for .ts configs: `export default defineImage({ ... })`. */
export function defineImage(config: ImageConfigInput): ImageConfigInput {
  return config;
}
