// An exit status a command chooses besides success and error (diff: 1 when
// the images differ), and the status its errors exit with (diff: 2), read by
// main.ts after the command has run.
let status = 0;

export function setExitStatus(n: number): void {
  status = n;
}

export function exitStatus(): number {
  return status;
}

/** Commands whose errors exit with another status than 1. */
export const ERROR_STATUS: Record<string, number> = { diff: 2 };
