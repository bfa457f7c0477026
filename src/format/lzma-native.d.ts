// The part of lzma-native (liblzma bindings, no types of its own) we use: its
// native stream driven synchronously, so the xz sink stays synchronous like
// the emitter while liblzma's own threads compress blocks in parallel.
declare module 'lzma-native' {
  interface NativeStream {
    mtEncoder_(o: { preset: number; filters: null; check: number; threads: number; blockSize?: number }): void;
    code(chunk: Buffer | null, async: boolean): void;
    bufferHandler: (buf: Buffer | null, processedChunks: number | null, err: Error | null) => void;
  }
  const lzma: {
    Stream: new () => NativeStream;
    CHECK_CRC32: number;
    CHECK_CRC64: number;
  };
  export default lzma;
}
