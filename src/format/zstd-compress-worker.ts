// Worker side of the async emitter's zstd compression (compress.ts,
// deferredZstdSink): compresses each frame it is sent with the same
// synchronous libzstd call zstdSink makes, so the bytes are zstdSink's, while
// the main thread's event loop runs. (Node's async zstdCompress is no
// substitute: it writes another frame header, and with worker threads it
// can return nothing.)
import * as zlib from 'node:zlib';
import { parentPort, workerData } from 'node:worker_threads';

export interface ZstdFrameRequest {
  id: number;
  frame: ArrayBuffer;
  length: number;
}

// Only the thread started as the compressor (workerData.zstdParams) serves.
const params = (workerData as { zstdParams?: Record<number, number> } | undefined)?.zstdParams;
if (parentPort && params) {
  const port = parentPort;
  port.on('message', (m: ZstdFrameRequest) => {
    try {
      const out = zlib.zstdCompressSync(Buffer.from(m.frame, 0, m.length), { params });
      // The frame goes back for reuse.
      port.postMessage({ id: m.id, out, frame: m.frame }, [m.frame]);
    } catch (err) {
      port.postMessage({ id: m.id, error: (err as Error).message, frame: m.frame }, [m.frame]);
    }
  });
}
