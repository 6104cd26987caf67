// Starting one of ctbridge's own threads (the engine, ingest) and watching it: the thread says `ready`
// or `failed` once it has opened what it needs; a thread that dies afterwards is reported through `onFailure`,
// because the process cannot ingest or sync without it (everything acknowledged is in the store, so the caller
// should exit and be restarted).
import { Worker, type TransferListItem, type WorkerOptions } from 'node:worker_threads';

export interface StartedWorker {
  worker: Worker;
  /** True once the thread has exited, for whatever reason. */
  exited(): boolean;
  /** Sends `{ type: 'stop' }`, waits for the thread's `stopped` (it finishes its work first), and ends it. */
  stop(): Promise<void>;
}

type Reply = { type: string; message?: string };

export async function startWorker<From extends Reply>(
  name: string,
  url: URL,
  options: WorkerOptions & { transferList?: TransferListItem[] },
  onMessage: (message: From) => void,
  onFailure: (error: Error) => void,
): Promise<StartedWorker> {
  const worker = new Worker(url, { name, ...options });
  let started = false;
  let exited = false;
  let stopping = false;
  let lastError: Error | undefined;
  let stopped: (() => void) | undefined;
  await new Promise<void>((resolve, reject) => {
    worker.on('error', (error: Error) => {
      lastError = error;
      if (!started) reject(error);
    });
    worker.on('message', (message: From) => {
      if (message.type === 'ready') {
        started = true;
        resolve();
      } else if (message.type === 'failed') reject(new Error(`the ${name} thread could not start: ${message.message ?? 'unknown error'}`));
      else if (message.type === 'stopped') stopped?.();
      else onMessage(message);
    });
    worker.once('exit', (code) => {
      if (!started) reject(lastError ?? new Error(`the ${name} thread exited during start-up (code ${code})`));
    });
  });
  worker.on('exit', (code) => {
    exited = true;
    stopped?.();
    if (!stopping) onFailure(lastError ?? new Error(`the ${name} thread exited unexpectedly (code ${code})`));
  });
  return {
    worker,
    exited: () => exited,
    async stop() {
      if (exited) return;
      await new Promise<void>((resolve) => {
        stopped = resolve;
        worker.postMessage({ type: 'stop' });
      });
      stopping = true;
      await worker.terminate();
    },
  };
}
