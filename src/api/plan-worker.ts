// Worker side of planImage (api/plan.ts): runs planBuild, which scans trees
// and hashes store paths synchronously for seconds, on its own thread, and
// posts the plan back with its Image packed (image/transfer.ts). Progress
// goes to the caller as messages; the caller aborts by terminating the thread.
import { parentPort, workerData } from 'node:worker_threads';
import { DiskwrightError } from '../errors.ts';
import { planBuild, type BuildInput, type DiskLayout } from './build.ts';
import { packImage, transferList, type PackedImage } from '../image/transfer.ts';
import { withProgress, type ProgressEvent } from '../util/progress.ts';

export interface PlanRequest {
  planWorker: true;
  input: BuildInput;
  /** Whether the caller listens to progress: without, no messages are made. */
  progress: boolean;
}

export type PlanMessage =
  | { kind: 'progress'; event: ProgressEvent }
  | { kind: 'plan'; disk: PackedImage; layout: DiskLayout; efiVars?: Uint8Array }
  /** The Image's lazy extents hold too many bytes to send: the caller plans on its own thread. */
  | { kind: 'lazy' }
  | { kind: 'error'; code?: string; name: string; message: string; data?: Record<string, unknown>; stack?: string };

// Only the thread started as the planner (workerData.planWorker) works.
const request = workerData as PlanRequest | undefined;
if (parentPort && request?.planWorker) {
  const port = parentPort;
  const onProgress = request.progress ? (event: ProgressEvent) => port.postMessage({ kind: 'progress', event } satisfies PlanMessage) : undefined;
  try {
    const plan = withProgress({ onProgress }, () => planBuild(request.input));
    const disk = packImage(plan.disk);
    if (!disk) port.postMessage({ kind: 'lazy' } satisfies PlanMessage);
    else {
      const efiVars = plan.efiVars && new Uint8Array(plan.efiVars);
      const list = transferList(disk);
      if (efiVars) list.push(efiVars.buffer);
      port.postMessage({ kind: 'plan', disk, layout: plan.layout, efiVars } satisfies PlanMessage, list);
    }
  } catch (err) {
    port.postMessage(errorMessage(err));
  }
}

/** An error as data: a DiskwrightError keeps its code and data (those that survive cloning). */
function errorMessage(err: unknown): PlanMessage {
  if (!(err instanceof Error)) return { kind: 'error', name: 'Error', message: String(err) };
  const m: PlanMessage = { kind: 'error', name: err.name, message: err.message, stack: err.stack };
  if (err instanceof DiskwrightError) {
    m.code = err.code;
    m.data = err.data;
    try {
      structuredClone(err.data);
    } catch {
      m.data = Object.fromEntries(Object.entries(err.data).filter(([, v]) => { try { structuredClone(v); return true; } catch { return false; } }));
    }
  }
  return m;
}
