// The part of lzma-native (liblzma bindings, no types of its own) we use: its
// native stream driven synchronously, so the xz sink stays synchronous like
// the emitter while liblzma's own threads compress blocks in parallel.
declare module 'lzma-native' {
  interface NativeStream {
    mtEncoder_(o: { preset: number; filters: null; check: number; threads: number; blockSize?: number }): void;
    code(chunk: Buffer | null, async: boolean): void;
    /** Raw streams without a container (GRUB's core.img holds a raw LZMA1 stream). */
    rawEncoder_(filters: LzmaFilter[]): void;
    rawDecoder_(filters: LzmaFilter[]): void;
    /** .lzma files (tests unpack core.img's stream behind an .lzma header); null: no memory limit. */
    aloneDecoder_(memlimit: number | null): void;
    bufferHandler: (buf: Buffer | null, processedChunks: number | null, err: Error | null) => void;
  }
  interface LzmaFilter {
    id: 'LZMA_FILTER_LZMA1' | 'LZMA_FILTER_LZMA2';
    options: { dictSize?: number; lc?: number; lp?: number; pb?: number; mode?: number; mf?: number; niceLen?: number; depth?: number };
  }
  const lzma: {
    Stream: new () => NativeStream;
    CHECK_CRC32: number;
    CHECK_CRC64: number;
    MODE_NORMAL: number;
    MF_BT4: number;
  };
  export default lzma;
}
