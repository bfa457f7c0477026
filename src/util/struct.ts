// Field tables: each on-disk structure is declared once (name as in its spec,
// offset, type) and encoded/decoded from that one declaration, so writers and
// readers cannot drift apart. Little-endian unless the table says otherwise
// (qcow2 and VHD are big-endian). The table's literal types flow into `decode`
// and `encode`: integer fields are numbers, byte fields Buffers, and a field
// name the table does not declare is a type error.

export type FieldType = 'u8' | 'u16' | 'u32' | 'u64' | 'i16' | 'i32' | { readonly bytes: number };
export type FieldDef = readonly [name: string, offset: number, type: FieldType];

type DecodedValue<T extends FieldType> = T extends { readonly bytes: number } ? Buffer : number;
/** u64 fields also take a bigint, for values such as all-ones that a number cannot hold. */
type EncodedValue<T extends FieldType> = T extends { readonly bytes: number } ? Uint8Array : T extends 'u64' ? number | bigint : number;

/** What `decode` returns: every field of the table, typed by its kind. */
export type Decoded<F extends readonly FieldDef[]> = { [D in F[number] as D[0]]: DecodedValue<D[2]> };
/** What `encode` takes: any subset of the table's fields. */
export type StructValues<F extends readonly FieldDef[] = readonly FieldDef[]> = { [D in F[number] as D[0]]?: EncodedValue<D[2]> };
export type FieldName<F extends readonly FieldDef[]> = F[number][0];
/** The names of the table's integer fields (those `decode` gives as numbers). */
export type IntFieldName<F extends readonly FieldDef[]> = Extract<F[number], readonly [string, number, Exclude<FieldType, { readonly bytes: number }>]>[0];

export interface Struct<F extends readonly FieldDef[] = readonly FieldDef[]> {
  readonly size: number;
  readonly fields: F;
  /** Each field's offset by name, for hot paths that write fields directly. */
  readonly offsets: Readonly<Record<FieldName<F>, number>>;
  /** Writes the given fields; fields not given are left as they are in `buf`. */
  encode(buf: Buffer, at: number, values: StructValues<F>): void;
  decode(buf: Buffer, at: number): Decoded<F>;
  offsetOf(name: FieldName<F>): number;
}

export function defineStruct<const F extends readonly FieldDef[]>(size: number, fields: F, opts: { bigEndian?: boolean } = {}): Struct<F> {
  const byName = new Map<string, FieldDef>(fields.map((f) => [f[0], f]));
  const be = opts.bigEndian ?? false;
  // u64 as two u32 halves, high first on big-endian: exact below 2^53.
  const [hiAt, loAt] = be ? [0, 4] : [4, 0];
  return {
    size,
    fields,
    offsets: Object.fromEntries(fields.map((f) => [f[0], f[1]])) as Record<FieldName<F>, number>,
    offsetOf(name) {
      const f = byName.get(name);
      if (!f) throw new Error(`no field ${name}`);
      return f[1];
    },
    encode(buf, at, values) {
      // Callers outside the type system (a table passed around as a plain Struct) can still name
      // a field the table lacks, hence the runtime check.
      const given = values as Record<string, number | bigint | Uint8Array | undefined>;
      for (const key in given) {
        const f = byName.get(key);
        if (!f) throw new Error(`no field ${key}`);
        const v = given[key];
        if (v === undefined) continue;
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
      // The loop fills exactly the table's fields with the kinds Decoded<F> names.
      return out as Decoded<F>;
    },
  };
}
