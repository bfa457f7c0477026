// The EFI variable store writer and reader against Debian's OVMF templates
// (apt-get download ovmf): Boot0001 and BootOrder appended after the last
// variable, every template byte before them kept (but the State of a
// variable replaced), 0xFF after them, the FTW areas untouched; checked with
// our reader and with an independent decoder written from VariableFormat.h
// and the UEFI spec in Python. The real oracle, OVMF booting through
// Boot0001, is in the boot tests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { DiskwrightError } from '../../src/errors.ts';
import {
  decodeBootOrder, decodeLoadOption, EFI_GLOBAL_VARIABLE_GUID, readEfiVars, writeEfiVars, type BootEntry,
} from '../../src/boot/efi-vars.ts';
import { diskwright } from '../cli/run.ts';
import { expectUserError } from '../errors.ts';

let work: string;
let ovmf: string;
/** Debian bookworm's ovmf ships all four; the .ms ones hold keys, boot options and deleted variables. */
const TEMPLATES = ['OVMF_VARS.fd', 'OVMF_VARS_4M.fd', 'OVMF_VARS.ms.fd', 'OVMF_VARS_4M.ms.fd'];
const ESP_GUID = '1C06F03B-704E-4657-B9CD-681A087A2FDC';
const ENTRY: BootEntry = {
  number: 1,
  partition: { partitionNumber: 1, startLba: 2048, sizeLba: 524288, partitionGuid: ESP_GUID },
  path: '\\EFI\\systemd\\systemd-bootx64.efi',
};

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'dw-efivars-'));
  const cache = process.env.DISKWRIGHT_BOOT_CACHE ?? work;
  ovmf = path.join(cache, 'ovmf', 'usr', 'share', 'OVMF');
  if (TEMPLATES.every((t) => fs.existsSync(path.join(ovmf, t)))) return;
  const dl = path.join(cache, 'ovmf-deb');
  fs.mkdirSync(dl, { recursive: true, mode: 0o777 });
  fs.chmodSync(dl, 0o777); // apt's _apt user writes there
  const get = spawnSync('apt-get', ['download', 'ovmf'], { cwd: dl });
  assert.equal(get.status, 0, `apt-get download ovmf: ${get.stderr}`);
  const deb = fs.readdirSync(dl).find((n) => /^ovmf_.*\.deb$/.test(n));
  assert.ok(deb, 'ovmf .deb downloaded');
  const x = spawnSync('dpkg-deb', ['-x', path.join(dl, deb), path.join(cache, 'ovmf')]);
  assert.equal(x.status, 0, String(x.stderr));
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

const template = (name: string) => fs.readFileSync(path.join(ovmf, name));

/** An independent reader: the store walked with Python's struct, straight from VariableFormat.h. */
const PY_DECODER = String.raw`
import json, struct, sys, uuid
b = open(sys.argv[1], 'rb').read()
assert b[40:44] == b'_FVH'
fv_len, = struct.unpack_from('<Q', b, 32)
hl, = struct.unpack_from('<H', b, 48)
sig = uuid.UUID(bytes_le=b[hl:hl+16])
size, fmt, state = struct.unpack_from('<IBB', b, hl + 16)
assert str(sig) == 'aaf32c78-947b-439a-a180-2e144ec37792' and fmt == 0x5a and state == 0xfe
end = hl + size
o = (hl + 28 + 3) & ~3
out = []
while o + 60 <= end and struct.unpack_from('<H', b, o)[0] == 0x55aa:
    st, attrs = b[o+2], struct.unpack_from('<I', b, o+4)[0]
    mono, = struct.unpack_from('<Q', b, o+8)
    ts, pk = b[o+16:o+32], struct.unpack_from('<I', b, o+32)[0]
    ns, ds = struct.unpack_from('<II', b, o+36)
    guid = str(uuid.UUID(bytes_le=b[o+44:o+60])).upper()
    name = b[o+60:o+60+ns].decode('utf-16le').rstrip('\0')
    data = b[o+60+ns:o+60+ns+ds]
    v = dict(offset=o, state=st, attrs=attrs, name=name, guid=guid, size=ds, zero=(mono == 0 and pk == 0 and ts == bytes(16)))
    if guid == '8BE4DF61-93CA-11D2-AA0D-00E098032B8C' and name == 'BootOrder':
        v['order'] = list(struct.unpack_from('<%dH' % (ds // 2), data))
    if guid == '8BE4DF61-93CA-11D2-AA0D-00E098032B8C' and name.startswith('Boot') and name != 'BootOrder':
        la, fl = struct.unpack_from('<IH', data, 0)
        d = data[6:]
        n = 0
        while d[n:n+2] != b'\0\0': n += 2
        v['active'] = la & 1
        v['desc'] = d[:n].decode('utf-16le')
        p = d[n+2:n+2+fl]
        nodes = []
        i = 0
        while i < len(p):
            t, s, l = p[i], p[i+1], struct.unpack_from('<H', p, i+2)[0]
            body = p[i+4:i+l]
            if (t, s) == (4, 1):
                pn, start, sz = struct.unpack_from('<IQQ', body, 0)
                nodes.append(['HD', pn, start, sz, str(uuid.UUID(bytes_le=body[20:36])).upper(), body[36], body[37]])
            elif (t, s) == (4, 4):
                nodes.append(['File', body.decode('utf-16le')])
            else:
                nodes.append([t, s, l])
            i += l
        v['path'] = nodes
    out.append(v)
    o = (o + 60 + ns + ds + 3) & ~3
print(json.dumps(dict(vars=out, free=o, end=end, fv=fv_len)))
`;

function pyDecode(file: string) {
  const r = spawnSync('python3', ['-c', PY_DECODER, file]);
  assert.equal(r.status, 0, String(r.stderr));
  return JSON.parse(String(r.stdout)) as { vars: Array<Record<string, unknown>>; free: number; end: number; fv: number };
}

for (const name of TEMPLATES) {
  test(`${name}: Boot0001 and BootOrder appended; template bytes kept, 0xFF after, FTW areas untouched`, () => {
    const t = template(name);
    const before = readEfiVars(t, name);
    const out = writeEfiVars(t, { boot: [ENTRY] });
    assert.equal(out.length, t.length);
    const after = readEfiVars(out, name);

    // Our reader: the old variables as they were (a replaced one now deleted), then ours.
    assert.equal(after.variables.length, before.variables.length + 2);
    const added = after.variables.slice(-2);
    assert.deepEqual(added.map((v) => [v.name, v.guid, v.attributes, v.state]), [['Boot0001', EFI_GLOBAL_VARIABLE_GUID, 7, 0x3f], ['BootOrder', EFI_GLOBAL_VARIABLE_GUID, 7, 0x3f]]);
    assert.equal(added[0].offset, before.freeOffset);
    assert.deepEqual(decodeLoadOption(added[0].data), {
      attributes: 1, description: 'Linux Boot Manager', path: `HD(1,GPT,${ESP_GUID},0x800,0x80000)/\\EFI\\systemd\\systemd-bootx64.efi`, optionalDataSize: 0,
    });
    assert.deepEqual(decodeBootOrder(added[1].data), [1]);
    const liveBoot1 = after.variables.filter((v) => v.live && v.name === 'Boot0001' && v.guid === EFI_GLOBAL_VARIABLE_GUID);
    assert.equal(liveBoot1.length, 1, 'one live Boot0001');

    // Bytes: the template up to its free space, except the State byte of what we replaced.
    const replaced = new Set(before.variables.filter((v) => v.live && v.guid === EFI_GLOBAL_VARIABLE_GUID && (v.name === 'Boot0001' || v.name === 'BootOrder')).map((v) => v.offset + 2));
    for (let i = 0; i < before.freeOffset; i++) {
      if (replaced.has(i)) assert.equal(out[i], 0x3c, `State of the replaced variable at ${i - 2}: deleted`);
      else if (out[i] !== t[i]) assert.fail(`byte ${i} changed`);
    }
    assert.ok(out.subarray(after.freeOffset, after.storeOffset + after.storeSize).every((b) => b === 0xff), '0xFF after the new variables');
    assert.ok(out.subarray(after.storeOffset + after.storeSize).equals(t.subarray(after.storeOffset + after.storeSize)), 'FTW working and spare areas untouched');
    assert.ok(after.freeErased);

    // The independent decoder sees the same store.
    const file = path.join(work, `out-${name}`);
    fs.writeFileSync(file, out);
    const py = pyDecode(file);
    assert.equal(py.free, after.freeOffset);
    assert.deepEqual(py.vars.map((v) => [v.name, v.state, v.size]), after.variables.map((v) => [v.name, v.state, v.data.length]));
    const [boot, order] = py.vars.slice(-2);
    assert.equal(boot.zero, true, 'no time stamp, count or key index');
    assert.deepEqual([boot.active, boot.desc, boot.path], [1, 'Linux Boot Manager', [['HD', 1, 2048, 524288, ESP_GUID, 2, 2], ['File', '\\EFI\\systemd\\systemd-bootx64.efi\u0000'], [127, 255, 4]]]);
    assert.deepEqual(order.order, [1]);
  });
}

test('writing again replaces: the previous Boot0001 and BootOrder deleted (State 0x3C), new ones appended; BootOrder keeps other entries', () => {
  const once = writeEfiVars(template('OVMF_VARS.fd'), { boot: [ENTRY, { ...ENTRY, number: 3, description: 'Other', path: '\\EFI\\BOOT\\BOOTX64.EFI' }] });
  const twice = writeEfiVars(once, { boot: [{ ...ENTRY, partition: { ...ENTRY.partition, partitionNumber: 2 } }] });
  const s = readEfiVars(twice);
  assert.deepEqual(s.variables.map((v) => [v.name, v.state]), [['Boot0001', 0x3c], ['Boot0003', 0x3f], ['BootOrder', 0x3c], ['Boot0001', 0x3f], ['BootOrder', 0x3f]]);
  assert.deepEqual(decodeBootOrder(s.variables[4].data), [1, 3]);
  assert.match(decodeLoadOption(s.variables[3].data)!.path, /^HD\(2,GPT,/);
  assert.ok(writeEfiVars(template('OVMF_VARS.fd'), { boot: [ENTRY] }).equals(writeEfiVars(template('OVMF_VARS.fd'), { boot: [ENTRY] })), 'pure and deterministic');
});

test('diskwright inspect lists the variables, Boot0001 decoded, and BootOrder', () => {
  const file = path.join(work, 'efi-vars.fd');
  fs.writeFileSync(file, writeEfiVars(template('OVMF_VARS_4M.fd'), { boot: [ENTRY] }));
  const r = diskwright(['inspect', file]);
  assert.equal(r.status, 0, r.stderr);
  const text = String(r.stdout);
  assert.match(text, /EFI variable store/);
  assert.match(text, /Boot0001 8BE4DF61-93CA-11D2-AA0D-00E098032B8C attributes 0x00000007, \d+ bytes: "Linux Boot Manager" HD\(1,GPT,1C06F03B-704E-4657-B9CD-681A087A2FDC,0x800,0x80000\)\/\\EFI\\systemd\\systemd-bootx64\.efi/);
  assert.match(text, /BootOrder 8BE4DF61-93CA-11D2-AA0D-00E098032B8C attributes 0x00000007, 2 bytes: Boot0001/);
  const j = diskwright(['inspect', file, '--json']);
  const vars = JSON.parse(String(j.stdout)).efiVariables.variables;
  assert.deepEqual(vars.map((v: { name: string }) => v.name), ['Boot0001', 'BootOrder']);
});

const refuses = expectUserError;

test('an unrelated file, a truncated or damaged template, a full store: one line each', () => {
  const t = template('OVMF_VARS.fd');
  refuses(() => writeEfiVars(Buffer.alloc(131072), { boot: [ENTRY] }, 'zeros.fd'), 'INPUT_NOT_IMAGE', /^zeros\.fd is not an edk2 variable store .*give .*OVMF_VARS\.fd/);
  refuses(() => writeEfiVars(Buffer.from('hello\n'), { boot: [ENTRY] }, 'hello.txt'), 'INPUT_NOT_IMAGE', /^hello\.txt is not an edk2 variable store/);
  refuses(() => writeEfiVars(t.subarray(0, 65536), { boot: [ENTRY] }, 'cut.fd'), 'IMAGE_TRUNCATED', /^cut\.fd: the firmware volume is 131072 bytes but the file has 65536/);
  const badSize = Buffer.from(t);
  badSize.writeUInt32LE(0x7fffffff, 0x48 + 16);
  refuses(() => writeEfiVars(badSize, { boot: [ENTRY] }, 'b.fd'), 'IMAGE_CORRUPT', /store size 2147483647 does not fit/);
  const badVar = writeEfiVars(t, { boot: [ENTRY] });
  badVar.writeUInt32LE(0xfffffff0, 0x64 + 40);
  refuses(() => readEfiVars(badVar, 'v.fd'), 'IMAGE_CORRUPT', /^v\.fd: variable at byte 100 has name size \d+ and data size 4294967280, past the end of the store/);
  refuses(() => writeEfiVars(t, { boot: [ENTRY], variables: [{ name: 'Big', guid: EFI_GLOBAL_VARIABLE_GUID, attributes: 7, data: Buffer.alloc(60000) }] }, 't.fd'), 'TOO_LARGE', /bytes free, too few/);

  // The CLI: one line, exit 1.
  const cut = path.join(work, 'cut.fd');
  fs.writeFileSync(cut, t.subarray(0, 65536));
  const r = diskwright(['inspect', cut]);
  assert.equal(r.status, 1);
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /cut\.fd: the firmware volume is 131072 bytes but the file has 65536; the file is truncated/);
});

test('fuzz: damaged stores give a DiskwrightError or variables inside the store, never a crash', () => {
  const good = writeEfiVars(template('OVMF_VARS.ms.fd'), { boot: [ENTRY] });
  const store = readEfiVars(good);
  let seed = 99;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < 400; i++) {
    const b = Buffer.from(good);
    // Damage the headers and the variables, where the reader must bound itself.
    for (let k = 0; k < 1 + Math.floor(rnd() * 6); k++) b[Math.floor(rnd() * store.freeOffset)] = Math.floor(rnd() * 256);
    try {
      const s = readEfiVars(b);
      for (const v of s.variables) {
        assert.ok(v.offset + v.data.length <= s.storeOffset + s.storeSize);
        decodeLoadOption(v.data);
      }
    } catch (err) {
      assert.ok(err instanceof DiskwrightError, String(err));
    }
  }
});
