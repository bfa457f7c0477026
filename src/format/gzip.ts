// Deterministic gzip (RFC 1952) for container layers: the input cut into
// members of a fixed size, each a fixed 10-byte header (no name, mtime 0,
// OS 255 "unknown", so the bytes do not depend on the building machine),
// raw deflate at a fixed level, then CRC-32 and size. Readers take a
// multi-member file as one stream (gzip -d, Go's compress/gzip as containerd
// and skopeo use it). Single-threaded: members are independent, so a worker
// pool could compress them without changing a byte.
import * as zlib from 'node:zlib';
import { orderedSink } from './compress.ts';
import type { Sink } from './raw.ts';

const MEMBER = 32 << 20;
const HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);

export function gzipSink(out: Sink, opts: { level?: number } = {}): Sink {
  let outPos = 0;
  const put = (b: Buffer) => {
    out.write(b, b.length, outPos);
    outPos += b.length;
  };
  let members = 0;
  const member = (data: Buffer) => {
    members++;
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(zlib.crc32(data) >>> 0, 0);
    trailer.writeUInt32LE(data.length >>> 0, 4);
    put(HEADER);
    put(zlib.deflateRawSync(data, { level: opts.level ?? 6 }));
    put(trailer);
  };
  return orderedSink(MEMBER, member, () => {
    // An empty input is still one (empty) member: a zero-byte file is not gzip.
    if (members === 0) member(Buffer.alloc(0));
    out.finish(outPos);
  });
}
