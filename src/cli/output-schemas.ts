// The shape of each command's --json document, as zod schemas: the commands
// type what they print against these, and `diskwright schema output COMMAND`
// and docs/schemas/ publish them as JSON Schema (cli/schema.ts). Objects are
// strict so a field added to the output without a schema fails the tests.
import { z } from 'zod';

const count = z.number().int().nonnegative();
const obj = z.strictObject;

/** A file the command wrote: its path and sizes; null where the output went to standard output. */
const written = obj({
  path: z.string(),
  apparentBytes: count,
  allocatedBytes: count.describe('bytes the file occupies on disk (holes left out)'),
}).nullable();

const fsReport = obj({
  type: z.enum(['ext4', 'vfat']),
  label: z.string(),
  uuid: z.string().describe('ext4: the UUID; vfat: the volume ID as XXXX-XXXX'),
  bytes: count,
  freeBytes: count,
  freeInodes: count.optional(),
  usedInodes: count.optional(),
  fatType: count.optional().describe('12, 16 or 32'),
  clusterBytes: count.optional(),
});

const layout = obj({
  image: z.string().describe('file name of the image inside the output directory'),
  format: z.string(),
  compress: z.string(),
  size: count.describe('virtual disk size in bytes'),
  partitionTableType: z.string(),
  table: z.enum(['mbr', 'gpt', 'hybrid', 'none']),
  diskGuid: z.string().optional(),
  diskSignature: z.string().optional(),
  partitions: z.array(obj({
    number: count.nullable(),
    role: z.string(),
    name: z.string(),
    start: count,
    size: count,
    startSector: count,
    sectors: count,
    typeGuid: z.string().optional(),
    mbrType: z.string().optional(),
    guid: z.string().optional(),
    bootable: z.boolean(),
    legacyBiosBootable: z.boolean(),
    attributes: z.string().optional(),
    filesystem: fsReport.optional(),
    prepared: obj({ type: z.string(), bytes: count }).optional(),
  })),
  blobs: z.array(obj({ key: z.string(), source: z.string(), offset: count, size: count })).optional(),
});

export const buildOutput = obj({
  layout,
  image: written.describe('the image; null when it went to standard output'),
  files: z.array(z.string()).describe('every file written: the image, layout.json, nix-support/hydra-build-products, efi-vars.fd'),
});

const ext4Output = obj({
  filesystem: z.literal('ext4'),
  bytes: count,
  blockSize: count,
  blocks: count,
  usedBlocks: count,
  freeBlocks: count,
  freeBytes: count,
  inodes: count,
  usedInodes: count,
  freeInodes: count,
  journalBlocks: count,
  groups: count,
  uuid: z.string(),
  label: z.string(),
  output: written,
});

const vfatOutput = obj({
  filesystem: z.literal('vfat'),
  fatType: z.union([z.literal(12), z.literal(16), z.literal(32)]),
  bytes: count,
  sectorsPerCluster: count,
  clusterBytes: count,
  clusters: count,
  usedClusters: count,
  freeClusters: count,
  freeBytes: count,
  volumeId: z.string().describe('XXXX-XXXX'),
  label: z.string(),
  files: count,
  dirs: count,
  output: written,
});

export const mkfsOutput = z.discriminatedUnion('filesystem', [ext4Output, vfatOutput]);

export const convertOutput = obj({
  input: obj({
    path: z.string(),
    format: z.string(),
    description: z.string(),
    size: count.describe('virtual disk size'),
    dataBytes: count.describe('bytes stored as data (the rest are holes)'),
  }),
  format: z.string(),
  compress: z.string(),
  output: written,
});

const storePathInfo = obj({
  path: z.string(),
  narHash: z.string().describe('sha256:<nix base-32>'),
  narSize: count,
  references: z.array(z.string()),
  deriver: z.string().nullable(),
});

export const closureOutput = obj({
  paths: z.array(storePathInfo),
  totalNarSize: count,
  files: z.array(z.string()).describe('store-paths, registration and total-nar-size in the output directory'),
});

export const narHashOutput = obj({
  paths: z.array(obj({ path: z.string(), narHash: z.string().describe('in the --encoding chosen'), narSize: count })),
});

export const containerOutput = obj({
  name: z.string(),
  tag: z.string(),
  format: z.string(),
  output: z.string().describe("the archive or OCI layout directory; '-' for standard output"),
  layers: z.array(obj({
    digest: z.string(),
    diffId: z.string(),
    mediaType: z.string(),
    size: count,
    storePaths: z.array(z.string()),
    cached: z.boolean(),
    base: z.literal(true).optional().describe('a layer of fromImage, copied byte for byte'),
  })),
});

export const initrdOutput = obj({
  members: count,
  files: count.describe('members with data'),
  bytes: count.describe('uncompressed archive size'),
  compress: z.string(),
  output: written,
});

const inspectFilesystem = obj({
  partition: count.nullable(),
  type: z.enum(['ext2', 'ext3', 'ext4', 'fat12', 'fat16', 'fat32']),
  label: z.string(),
  uuid: z.string(),
  size: count,
  blockSize: count,
  blocks: count,
  usedBlocks: count,
  freeBlocks: count,
  inodes: count.optional(),
  usedInodes: count.optional(),
  freeInodes: count.optional(),
  features: z.array(z.string()),
  ext4: obj({
    hashSeed: z.string(),
    defaultHash: z.string(),
    flags: z.array(z.string()),
    inodeSize: count,
    reservedBlocks: count,
    blocksPerGroup: count,
    inodesPerGroup: count,
    groups: count,
    revision: count,
    state: z.string(),
    mountCount: count,
    maxMountCount: z.number().int(),
    lastMounted: z.string(),
    created: z.string().nullable(),
    lastWrite: z.string().nullable(),
    lastMount: z.string().nullable(),
    lastCheck: z.string().nullable(),
    journal: obj({ inode: count, blocks: count, blockSize: count, sequence: count, uuid: z.string() }).nullable(),
  }).optional(),
  fat: obj({
    fatType: z.union([z.literal(12), z.literal(16), z.literal(32)]),
    volumeId: z.string(),
    bytesPerSector: count,
    sectorsPerCluster: count,
    clusterSize: count,
    reservedSectors: count,
    fats: count,
    sectorsPerFat: count,
    rootEntries: count,
    totalSectors: count,
    hiddenSectors: count,
    media: z.string(),
    oemName: z.string(),
    fatOffset: count,
    rootDirOffset: count,
    dataOffset: count,
    badClusters: count,
    fsinfoFree: count.optional(),
  }).optional(),
});

export const inspectOutput = obj({
  path: z.string(),
  format: z.string(),
  description: z.string(),
  compressedClusters: count.optional(),
  virtualSize: count,
  fileSize: count,
  allocatedSize: count,
  dataSize: count.nullable(),
  table: obj({
    kind: z.enum(['mbr', 'gpt', 'hybrid']),
    sectorSize: count,
    diskGuid: z.string().optional(),
    diskSignature: z.string(),
    firstUsableLba: count.optional(),
    lastUsableLba: count.optional(),
    gptCopy: z.enum(['primary', 'backup']).optional(),
    partitions: z.array(obj({
      number: count,
      start: count,
      size: count,
      startLba: count,
      sectors: count,
      type: z.string(),
      typeName: z.string(),
      name: z.string().optional(),
      guid: z.string().optional(),
      attributes: z.string().optional(),
      attributeNames: z.array(z.string()),
      mbrType: z.string().optional(),
      bootable: z.boolean(),
      extended: z.boolean().optional(),
      logical: z.boolean().optional(),
    })),
  }).nullable(),
  filesystems: z.array(inspectFilesystem),
  efiVariables: obj({
    authenticated: z.boolean(),
    storeSize: count,
    freeBytes: count,
    deleted: count,
    variables: z.array(obj({
      name: z.string(),
      guid: z.string(),
      attributes: z.string(),
      dataSize: count,
      bootOption: obj({ attributes: count, description: z.string(), path: z.string(), optionalDataSize: count }).optional(),
      bootOrder: z.array(z.string()).optional(),
    })),
  }).optional(),
  warnings: z.array(z.string()),
});

const fieldChange = obj({
  field: z.string(),
  a: z.string().nullable(),
  b: z.string().nullable(),
  alsoIn: z.array(z.string()).optional(),
  offset: count.optional(),
});
const change = z.enum(['added', 'removed', 'changed']);
const imageSide = obj({ path: z.string(), format: z.string(), description: z.string(), size: count });

export const diffOutput = obj({
  identical: z.boolean(),
  a: imageSide,
  b: imageSide,
  differingBytes: count,
  differingRanges: count,
  disk: z.array(fieldChange),
  partitions: z.array(obj({ partition: count, change, fields: z.array(fieldChange) })),
  volumes: z.array(obj({
    partition: count.nullable(),
    filesystem: z.string(),
    fields: z.array(fieldChange),
    files: z.array(obj({ path: z.string(), change, type: z.string(), fields: z.array(fieldChange) })),
  })),
  ranges: z.array(obj({
    offset: count,
    length: count,
    area: z.string(),
    owner: z.string(),
    entry: z.string().optional(),
    ownerB: z.string().optional(),
    entryB: z.string().optional(),
  })),
  explainedBytes: count,
  rangesTruncated: z.boolean(),
  warnings: z.array(z.string()),
});

export const lsOutput = obj({
  entries: z.array(obj({
    name: z.string().describe('as escaped for display (\\xNN for bytes that are not printable UTF-8); with -R a path relative to PATH'),
    type: z.enum(['file', 'dir', 'symlink', 'chr', 'blk', 'fifo', 'sock']),
    mode: count.describe('the 07777 permission bits'),
    nlink: count,
    uid: count,
    gid: count,
    size: count,
    mtime: z.string().describe('UTC ISO 8601, to the nanosecond when the filesystem has it'),
    target: z.string().optional().describe('symlink target, escaped as names are'),
    major: count.optional(),
    minor: count.optional(),
  })),
});

export const extractOutput = obj({
  dir: z.string(),
  entries: count,
  files: count,
  dataBytes: count.describe('bytes of file data written (holes left out)'),
  warnings: z.array(z.string()),
  skipped: z.array(z.string()).describe('entries not extracted for their names'),
});

/** Each command's --json document, by the name `schema output NAME` takes. */
export const OUTPUT_SCHEMAS = {
  build: buildOutput,
  mkfs: mkfsOutput,
  convert: convertOutput,
  closure: closureOutput,
  'nar-hash': narHashOutput,
  container: containerOutput,
  initrd: initrdOutput,
  inspect: inspectOutput,
  diff: diffOutput,
  ls: lsOutput,
  extract: extractOutput,
} as const;

export type OutputName = keyof typeof OUTPUT_SCHEMAS;
