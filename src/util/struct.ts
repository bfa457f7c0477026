// Field tables: each on-disk structure is declared once (name as in its spec,
// offset, type) and encoded/decoded from that one declaration, so writers and
// readers cannot drift apart.

export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | 'i16' | 'i32' | { bytes: number };
export type FieldDef = readonly [name: string, offset: number, type: FieldType];
export type StructValues = Record<string, number | Uint8Array>;

export interface Struct {
  readonly size: number;
  readonly fields: readonly FieldDef[];
  /** Writes the given fields; fields not given are left as they are in `buf`. */
  encode(buf: Buffer, at: number, values: StructValues): void;
  decode(buf: Buffer, at: number): Record<string, number | Buffer>;
  offsetOf(name: string): number;
}

export function defineStruct(size: number, fields: readonly FieldDef[]): Struct {
  const byName = new Map(fields.map((f) => [f[0], f]));
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
        const n = v as number;
        switch (t) {
          case 'u8': buf[o] = n; break;
          case 'u16': buf.writeUInt16LE(n & 0xffff, o); break;
          case 'i16': buf.writeInt16LE(n, o); break;
          case 'u32': buf.writeUInt32LE(n >>> 0, o); break;
          case 'i32': buf.writeInt32LE(n | 0, o); break;
          case 'u64':
            buf.writeUInt32LE(n % 0x100000000, o);
            buf.writeUInt32LE(Math.floor(n / 0x100000000), o + 4);
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
        else if (t === 'u16') out[name] = buf.readUInt16LE(o);
        else if (t === 'i16') out[name] = buf.readInt16LE(o);
        else if (t === 'u32') out[name] = buf.readUInt32LE(o);
        else if (t === 'i32') out[name] = buf.readInt32LE(o);
        else out[name] = buf.readUInt32LE(o) + buf.readUInt32LE(o + 4) * 0x100000000;
      }
      return out;
    },
  };
}
