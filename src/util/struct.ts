// Field tables: each on-disk structure is declared once (name as in its spec,
// offset, type) and encoded/decoded from that one declaration, so writers and
// readers cannot drift apart. Little-endian unless the table says otherwise
// (qcow2 and VHD are big-endian).

export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | 'i16' | 'i32' | { bytes: number };
export type FieldDef = readonly [name: string, offset: number, type: FieldType];
/** u64 fields also take a bigint, for values such as all-ones that a number cannot hold. */
export type StructValues = Record<string, number | bigint | Uint8Array>;

export interface Struct {
  readonly size: number;
  readonly fields: readonly FieldDef[];
  /** Writes the given fields; fields not given are left as they are in `buf`. */
  encode(buf: Buffer, at: number, values: StructValues): void;
  decode(buf: Buffer, at: number): Record<string, number | Buffer>;
  offsetOf(name: string): number;
}

export function defineStruct(size: number, fields: readonly FieldDef[], opts: { bigEndian?: boolean } = {}): Struct {
  const byName = new Map(fields.map((f) => [f[0], f]));
  const be = opts.bigEndian ?? false;
  // u64 as two u32 halves, high first on big-endian: exact below 2^53.
  const [hiAt, loAt] = be ? [0, 4] : [4, 0];
  return {
    size,
    fields,
    offsetOf(name) {
      const f = byName.get(name);
      if (!f) throw new Error(`no field ${name}`);
      return f[1];
    },
    encode(buf, at, values) {
      for (const key in values) {
        const f = byName.get(key);
        if (!f) throw new Error(`no field ${key}`);
        const v = values[key];
        const o = at + f[1];
        const t = f[2];
        if (typeof t === 'object') {
          const b = v as Uint8Array;
          if (b.length > t.bytes) throw new Error(`${key}: ${b.length} bytes > ${t.bytes}`);
          buf.fill(0, o, o + t.bytes);
          buf.set(b, o);
          continue;
        }
        if (typeof v === 'bigint') {
          if (t !== 'u64') throw new Error(`${key}: bigint for a ${t} field`);
          if (be) buf.writeBigUInt64BE(v, o);
          else buf.writeBigUInt64LE(v, o);
          continue;
        }
        const n = v as number;
        switch (t) {
          case 'u8': buf[o] = n; break;
          case 'u16': if (be) buf.writeUInt16BE(n & 0xffff, o); else buf.writeUInt16LE(n & 0xffff, o); break;
          case 'i16': if (be) buf.writeInt16BE(n, o); else buf.writeInt16LE(n, o); break;
          case 'u32':
            // A block number or offset past 2^32 must go to a _hi field, never wrap silently
            // (negative int32s are welcome: checksums computed in signed arithmetic).
            if (!(n >= -0x80000000 && n <= 0xffffffff)) throw new Error(`internal: ${key} = ${n} does not fit in 32 bits`);
            if (be) buf.writeUInt32BE(n >>> 0, o); else buf.writeUInt32LE(n >>> 0, o);
            break;
          case 'i32': if (be) buf.writeInt32BE(n | 0, o); else buf.writeInt32LE(n | 0, o); break;
          case 'u64':
            if (!(n >= 0 && n <= Number.MAX_SAFE_INTEGER)) throw new Error(`internal: ${key} = ${n} is not an exact u64; pass a bigint`);
            if (be) buf.writeUInt32BE(Math.floor(n / 0x100000000), o + hiAt);
            else buf.writeUInt32LE(Math.floor(n / 0x100000000), o + hiAt);
            if (be) buf.writeUInt32BE(n % 0x100000000, o + loAt);
            else buf.writeUInt32LE(n % 0x100000000, o + loAt);
            break;
        }
      }
    },
    decode(buf, at) {
      const out: Record<string, number | Buffer> = {};
      for (const [name, off, t] of fields) {
        const o = at + off;
        if (typeof t === 'object') out[name] = Buffer.from(buf.subarray(o, o + t.bytes));
        else if (t === 'u8') out[name] = buf[o];
        else if (t === 'u16') out[name] = be ? buf.readUInt16BE(o) : buf.readUInt16LE(o);
        else if (t === 'i16') out[name] = be ? buf.readInt16BE(o) : buf.readInt16LE(o);
        else if (t === 'u32') out[name] = be ? buf.readUInt32BE(o) : buf.readUInt32LE(o);
        else if (t === 'i32') out[name] = be ? buf.readInt32BE(o) : buf.readInt32LE(o);
        else {
          const u32 = (at2: number) => (be ? buf.readUInt32BE(at2) : buf.readUInt32LE(at2));
          out[name] = u32(o + hiAt) * 0x100000000 + u32(o + loAt);
        }
      }
      return out;
    },
  };
}
