// Byte identity of every make-disk-image layout in every output format, and
// of make-ext4-fs, against SHA-256 sums recorded from the code before the disk
// spec and its compiler replaced the hand-wired layouts (issue 12). A change
// here means the presets no longer write what make-disk-image users got.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { loadConfig } from '../../src/config/load.ts';
import { buildImage } from '../../src/api/build.ts';
import { CONTENTS, EPOCH, makeBuildSources } from '../build/fixture.ts';

const LAYOUTS = ['legacy', 'legacy+boot', 'legacy+gpt', 'efi', 'efixbootldr', 'hybrid', 'none'] as const;
/** Output choices: format, plus compress for the raw compressed ones. */
const OUTPUTS: Record<string, { format: string; compress?: string }> = {
  raw: { format: 'raw' },
  qcow2: { format: 'qcow2' },
  'qcow2-compressed': { format: 'qcow2-compressed' },
  vdi: { format: 'vdi' },
  vpc: { format: 'vpc' },
  'vhd-fixed': { format: 'vhd-fixed' },
  zstd: { format: 'raw', compress: 'zstd' },
  xz: { format: 'raw', compress: 'xz' },
};
/** Compressing is the slow part: compressed outputs on three layouts, one per table kind. */
const COMPRESSED = new Set(['qcow2-compressed', 'zstd', 'xz']);
const COMPRESSED_LAYOUTS = new Set(['legacy', 'efi', 'none']);

// Recorded on 010bfa7 (before src/disk/).
const WANT: Record<string, string> = {
  'legacy/raw': '745781c4db1ff9f1a42e742a01cdf70419ffbd7b7f8b8407741866225b054c08 58ef7a2dc7eb90ab',
  'legacy/qcow2': '5352016988333b80ef268b6455cc4927a4e465eff253de66c1c2fa20fe06e966 80f600fefe43fafb',
  'legacy/qcow2-compressed': 'e73cc0d6e4d1de9876aeff77303b0ec9dad51558be85b591d6fc2c7707d91512 c96e408203f96fc4',
  'legacy/vdi': '0518d886b16dcd7d307d5771bc0387f3c752204a189d48421c64d8f39b56f8c2 2faa5c53d8c01d6f',
  'legacy/vpc': 'dd6d95a7a44db450f8bf8f14daaf67f76ddec771bae72f7561b066462797ef82 e45e99eb131b4c5e',
  'legacy/vhd-fixed': 'ab2f9044587dbb166a0bd625c28b8598d6aa817662789ffacb832b1d7051878b 044d42e189066770',
  'legacy/zstd': 'ff4b27ec4053f68753f95161bc6a7467878bc39a5c7e9bf482ae3f7035e5fa2c 3d8c1eb222c14417',
  'legacy/xz': 'a2c7ea1adcefc88b79adcd9dc8a5b95481fdc4ff4605221b72651ef17af3b64b 69e52ea4ba7f3a0a',
  'legacy+boot/raw': 'ca3a7e0a804811c0ee6e85e94aea99d24c0a9ee60ad2a11ba4db19ab2cdcb1e8 c84241a64474aa76',
  'legacy+boot/qcow2': '04284a92ff7be9ae2e52f484e201955ca24315910adbf1b83cc53e26cb7600ef 5433e353df5e32e3',
  'legacy+boot/vdi': 'd4fbbe86020aaebaaa660bd62a1e51bcc1a2eb8d22cc7dc8fba0f9b0263e8e36 cc8a4db12f604d8e',
  'legacy+boot/vpc': '163f265a526d1f40930e0bcc0c66d9034cbe807e9e9a3d20951a134ef6267ae0 4da854535f845332',
  'legacy+boot/vhd-fixed': '3c471203bf109101ca470b5a187722ba6c14454420e3114d0823d88fc80e2373 e47247c906b03cbf',
  'legacy+gpt/raw': 'ab4d0f3fc12e8121d4005ce94c9844f97c1574b3bad783f058eeeb68ec15a067 ad498450039cc0cb',
  'legacy+gpt/qcow2': 'e2664e3073a3eb69e16fcd1b45fedb374a28923d5f34e92ae0ef3119a0bca273 f5b017514c0776d4',
  'legacy+gpt/vdi': '2080882c480a7a3318468a15c4f63150e9c649f76f658ad3a98cb59caa2ae8e8 f99691c09465f209',
  'legacy+gpt/vpc': 'cc3e879cddd2b18f803e797ea6a3d231f428f86766d8f10b6aa791ad07a253fc 745d774ae9bceb52',
  'legacy+gpt/vhd-fixed': '43f5b107b8992204209efd5837a02c5685000cccc3eeaa0255b52c8d286ff772 f041f7450c403a79',
  'efi/raw': '6b3bc2c3b79ebdb3c7163ac2c08b76e8cc7a482ee377ccdbe51c1f45b2da18c5 15ff65c94cd49a17',
  'efi/qcow2': 'b51ceff98068308e97eafc78ac5e0ccbe5eea74ab5d5d6dfabc9c2fb398b67c6 ca5b97c0def6ed7b',
  'efi/qcow2-compressed': '591c83436a86c3934f755c1dd30036fac55e2c148f3f6ac8af60985b9292dcab 57437fde2dbde49e',
  'efi/vdi': '3dc33b7db0f46a7e30cacee20a6a86e30ecf4ad5a4a4c554e7de81c5d2d04fca 2c59465f382ff624',
  'efi/vpc': '6b6411d9cdaaf6b42bafe535975de5600ecd0397e1a115747281366077ebd151 99f24e20cac195aa',
  'efi/vhd-fixed': '187c9bd08b2278c7f70e2f313276597db648f9c55b16339c7e5defe1293550c8 b6ed326a3bff03a9',
  'efi/zstd': 'a0cedcf9277655a45199010daccdeeb247097f070e330b6cc5a255d60d48de9a f740466962bf7fc9',
  'efi/xz': 'c45c70e184a07643faf81f61cf75577b2c200be7e65eda026b54511e536b7add 2d2af0e89264abe0',
  'efixbootldr/raw': '3f5d4f2697411a56e0e1360e281d876286336689c2b233644c8dd1aba80d322c 824de7591c6aa919',
  'efixbootldr/qcow2': 'f7fbf72b0d58e9f8637589a3b22e1bb00a6e74c00dacd7a4e18d23403d94ebae 29fd52621f880a4f',
  'efixbootldr/vdi': '7e302792c4f0a1b5e5607f7a032c9b306d227287ca27a6e886cc7a39767708bb baeea5de691321c1',
  'efixbootldr/vpc': '6af5b8bb00439bc3e559d550120d8c09ccac80e03bfb87668a34eaa135b3db55 e25f20026176ecdc',
  'efixbootldr/vhd-fixed': '1bcfe12af2fa92910cbbd12addc27d32a8177f0fa7a438be3af9c3d36502007c 7b75e905f1928064',
  'hybrid/raw': 'd00013ce0fa8972facb55c38dfca84cf05f2b57f22481aa75b58530408a52aa2 a01b7fff20d0bc82',
  'hybrid/qcow2': '70d458c8b2f05841ac283e25a17b341d49e44276424f9794b783efe398a90ddb 1c9bd4b39d9c052a',
  'hybrid/vdi': 'cf0bf7d48688b1a370a820b476915ba998219f52745790c553b03d349e766ea1 08eecaef9df35503',
  'hybrid/vpc': 'a90e0876644ded62485c6b514319e10600af999e81ef3c29a1c61d074b7fc745 e8c604b561717a5f',
  'hybrid/vhd-fixed': '1852930107e369d7c28acc9afb22a4191196cc16cfefb29e88ea00345021ed2e d2e18b339ef5d751',
  'none/raw': '6c67433b818ca43de5f358690921a0b03ab22eaa3ef19e4e4025faa2559df005 a683c6806fb20778',
  'none/qcow2': '5a9fde01889c0c3648aff243866d08af61b757e06acaf6da528c7b6efc125228 808fb73ba8e30ad6',
  'none/qcow2-compressed': 'f00f0f0ebb415802dae76b61433ef3b2b1033e8547ddb1f2bfb1ac97b40b34d8 070b143de1609068',
  'none/vdi': 'fd0295c816016f9099ca38231c0a278a00d8262fe87e26149221b976b9235a4f 463f22870232dc55',
  'none/vpc': '243e14400c5f8ec9ecccaa7b230821ac2eb65a12ed19b03619c28cbe449d37a8 2489893a9ba5ad4b',
  'none/vhd-fixed': '028df2ac0a77bc7b62c4ab99d6ac6caefca575055045c45aa2e0b02e61dce83e 9b64a5759df0c2d9',
  'none/zstd': '82d071464c7a65a38339dcd70afb6a7bb53d751ce3dc8e00230ec6ccc12c8591 203c5f172f0f89f6',
  'none/xz': '079a2aedf0bfbbd5b1799e7d2479d65787919a91e314d36ccb2bd100e7fcc1d4 890b6b28ef905b8c',
  'legacy+boot/options': '21487c86e24431d83a8bd773a02beb17b95d1965867d7d8b229873f9870b7382 09a67d94ce607963',
  'efi/root-type': 'e8219288ef75fd7b9991a80e47ea9290eb9e874f9a5c4345a53a3e8b3eb5c4e5 307d50bf85b50cb3',
  'make-ext4-fs/raw': '772e42c431e36be70bf410b8b30e4a4f0fe0701c3e0d70d7e4e599477487867b 0e1e4df6204749fc',
  'make-ext4-fs/zstd': 'a05be4a1aeb20ce0433b5d0746d7d6bd97564aa929dc2041ece786a314249169 e731f4213b1c33e8',
};

let work: string;

/** Every directory and symlink gets a fixed mode and time, so the sources do not depend on when or under which umask the test ran. */
function pin(dir: string): void {
  for (const name of fs.readdirSync(dir)) {
    const p = path.join(dir, name);
    const st = fs.lstatSync(p);
    if (st.isDirectory()) {
      pin(p);
      fs.chmodSync(p, 0o755);
      fs.utimesSync(p, 1_600_000_000, 1_600_000_000);
    } else if (st.isSymbolicLink()) fs.lutimesSync(p, 1_600_000_000, 1_600_000_000);
  }
}

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-identity-'));
  makeBuildSources(work);
  pin(work);
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

function sha(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1 << 20);
  try {
    for (let n; (n = fs.readSync(fd, buf)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

async function build(key: string, config: object): Promise<string> {
  const file = path.join(work, `${key.replace(/[^a-z0-9-]/g, '_')}.json`);
  fs.writeFileSync(file, JSON.stringify(config));
  const loaded = await loadConfig(file);
  const outDir = path.join(work, 'out');
  const r = buildImage({ config: loaded.config, given: loaded.given, baseDir: loaded.baseDir, outDir });
  const sum = sha(r.imagePath) + ' ' + createHash('sha256').update(fs.readFileSync(path.join(outDir, 'layout.json'))).digest('hex').slice(0, 16);
  fs.rmSync(outDir, { recursive: true });
  return sum;
}

function check(key: string, got: string) {
  if (process.env.DW_RECORD) console.log(`  '${key}': '${got}',`);
  else assert.equal(got, WANT[key], `${key}: image or layout.json changed`);
}

for (const type of LAYOUTS) {
  test(`${type}: every output format is byte-identical to the recorded build`, async () => {
    const hasEsp = ['legacy+boot', 'efi', 'efixbootldr', 'hybrid'].includes(type);
    const base = {
      partitionTableType: type,
      root: 'rootfs',
      contents: CONTENTS,
      additionalSpace: '1M',
      bootSize: type === 'efixbootldr' ? '104M' : '12M',
      epoch: EPOCH,
      ...(hasEsp ? { espContents: [{ source: 'esp/', target: '/' }] } : {}),
      ...(type === 'efixbootldr' ? { xbootldrContents: [{ source: 'xbootldr/nixos', target: '/EFI/nixos' }] } : {}),
    };
    for (const [name, out] of Object.entries(OUTPUTS)) {
      if (COMPRESSED.has(name) && !COMPRESSED_LAYOUTS.has(type)) continue;
      const key = `${type}/${name}`;
      check(key, await build(key, { ...base, ...out }));
    }
  });
}

test('legacy with a fixed diskSize, non-deterministic ids and every boot option: byte-identical', async () => {
  check('legacy+boot/options', await build('options', {
    partitionTableType: 'legacy+boot', root: 'rootfs', contents: CONTENTS, diskSize: 24, bootSize: '10M', epoch: EPOCH,
    deterministic: false, seed: 'other', diskSignature: '1234abcd', espLabel: 'FW', espVolumeId: 'cafe0001',
    espContents: [{ source: 'esp/', target: '/' }], label: 'root', freeInodes: 7,
  }));
  check('efi/root-type', await build('root-type', {
    partitionTableType: 'efi', root: 'rootfs', bootSize: '9M', epoch: EPOCH, rootPartitionType: 'root', system: 'aarch64-linux',
    rootFSUID: '11111111-2222-4333-8444-555555555555', bytesPerInode: 4096, additionalSpace: '2M',
  }));
});

test('make-ext4-fs: byte-identical to the recorded build, plain and compressed', async () => {
  const base = { builder: 'make-ext4-fs', storePaths: [], volumeLabel: 'data', files: ['rootfs', 'extra'], epoch: EPOCH };
  check('make-ext4-fs/raw', await build('m1', base));
  check('make-ext4-fs/zstd', await build('m2', { ...base, compressImage: true, uuid: '12345678-1234-4234-8234-123456789abc', freeSpace: '2M' }));
});
