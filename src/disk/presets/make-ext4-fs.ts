// make-ext4-fs's arguments as a config (`builder: make-ext4-fs`), so a Nix
// user moves a make-ext4-fs call over one argument at a time. It becomes a
// build config for a bare ext4 filesystem (partitionTableType none):
//   storePaths       -> storePaths (closure in /nix/store, /nix-path-registration)
//   volumeLabel      -> label
//   uuid             -> rootFSUID (default 44444444-4444-4444-8888-888888888888)
//   compressImage    -> compress: zstd (ext4-fs.img.zst)
//   populateImageCommands' ./files -> files: directories copied to the root
// make-ext4-fs leaves 16 MiB free after shrinking the filesystem to fit; so
// does this, exactly (additionalSpace), instead of its size estimate.
import { z } from 'zod';
import { parseUuid } from '../../util/ids.ts';
import { FORMATS } from '../../format/output.ts';

const uuid = z.string().refine((v) => parseUuid(v) !== null, { message: 'expected a UUID like 44444444-4444-4444-8888-888888888888' });
const size = z.union([z.number().int().nonnegative(), z.string()]);

/** Options a Nix builder preset takes on top of its own, with the build config's meaning; copied over as they are. */
export const PASSED_THROUGH = ['format', 'compressLevel', 'storeDir', 'nixStoreDir', 'storeReferences', 'seed', 'epoch', 'clampMtime'] as const;
export const passedThrough = {
  format: z.enum(FORMATS).optional(),
  compressLevel: z.number().int().optional(),
  storeDir: z.string().min(1).optional(),
  nixStoreDir: z.string().optional(),
  storeReferences: z.string().min(1).optional(),
  seed: z.string().optional(),
  epoch: z.number().int().nonnegative().optional(),
  clampMtime: z.boolean().optional(),
};

export const makeExt4FsSchema = z.strictObject({
  builder: z.literal('make-ext4-fs'),
  storePaths: z.array(z.string().min(1)),
  volumeLabel: z.string(),
  uuid: uuid.default('44444444-4444-4444-8888-888888888888'),
  compressImage: z.boolean().default(false),
  files: z.array(z.string().min(1)).default([]),
  // diskwright's own, with the build config's meaning
  freeSpace: size.default('16M'),
  freeInodes: z.number().int().nonnegative().optional(),
  nixPathRegistration: z.union([z.string(), z.literal(false)]).optional(),
  ...passedThrough,
});

export type MakeExt4FsConfig = z.output<typeof makeExt4FsSchema>;

/** The equivalent build config (still to be validated by the build schema). */
export function fromMakeExt4Fs(c: MakeExt4FsConfig): Record<string, unknown> {
  const out: Record<string, unknown> = {
    partitionTableType: 'none',
    baseName: 'ext4-fs',
    storePaths: c.storePaths,
    label: c.volumeLabel,
    rootFSUID: c.uuid,
    compress: c.compressImage ? 'zstd' : 'none',
    additionalSpace: c.freeSpace,
    // resize2fs to the block, not a whole MiB
    exactSize: true,
    // make-ext4-fs's mkfs.ext4 picks a random hash seed; ours comes from the seed.
    deterministic: false,
  };
  if (c.files.length) out.root = c.files;
  for (const k of ['freeInodes', 'nixPathRegistration', ...PASSED_THROUGH] as const) {
    if (c[k] !== undefined) out[k] = c[k];
  }
  return out;
}
