// The HTTP thread's handle on the ingest thread (ingest-thread.ts): an IngestService whose requests made in one
// tick travel as one message, each settling with the thread's answer once its body is committed (or refused).
import type { MessagePort } from 'node:worker_threads';
import { startWorker } from '../engine/worker-start.ts';
import type { IngestResult, IngestService } from './ingest-service.ts';
import type { FromIngest, IngestThreadData, ThreadIngestRequest, ToIngest } from './ingest-thread.ts';
import { transportHeaders } from './normalize.ts';

export interface ThreadIngest extends IngestService {
  heapStatistics(): Promise<{ used_heap_size: number; total_heap_size: number }>;
  stop(): Promise<void>;
}

interface Settle {
  resolve: (result: IngestResult) => void;
  reject: (error: unknown) => void;
}

// The thread's live data is the bodies being read (one at a time) and those waiting for one commit, which are
// bytes outside the heap.
const INGEST_HEAP_LIMITS = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 };

/**
 * Starts the ingest thread on `storeUrl`; it tells `enginePort` (transferred to it) about every commit and seals
 * bodies under `sealKey`.
 */
export async function startIngestThread(settings: Omit<IngestThreadData, 'enginePort'>, enginePort: MessagePort, onFailure: (error: Error) => void): Promise<ThreadIngest> {
  const pending = new Map<number, Settle>();
  const thread = await startWorker<FromIngest>(
    'ingest',
    new URL('./ingest-thread.ts', import.meta.url),
    { workerData: { ...settings, enginePort } satisfies IngestThreadData, transferList: [enginePort], resourceLimits: INGEST_HEAP_LIMITS },
    (message) => {
      if (message.type === 'ingested') {
        for (const answer of message.results) {
          const settle = pending.get(answer.id);
          pending.delete(answer.id);
          if ('error' in answer) settle?.reject(new Error(`the inbox append failed: ${answer.error}`));
          else settle?.resolve(answer.result);
        }
      }
    },
    (error) => {
      for (const settle of pending.values()) settle.reject(new Error('the ingest thread stopped before the body was committed'));
      pending.clear();
      onFailure(error);
    },
  );

  let nextId = 0;
  let next: ThreadIngestRequest[] | undefined;
  function sendNext(): void {
    const requests = next!;
    next = undefined;
    if (thread.exited()) {
      for (const { id } of requests) pending.get(id)?.reject(new Error('the ingest thread has stopped; nothing was stored'));
      return;
    }
    // A body that owns its whole ArrayBuffer (any body over a few KB: Fastify concatenates the chunks into a fresh
    // buffer) moves to the thread instead of being copied; the request is done with it.
    const transfer = requests.flatMap(({ raw }) => (raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength && raw.buffer instanceof ArrayBuffer ? [raw.buffer] : []));
    thread.worker.postMessage({ type: 'ingest', requests } satisfies ToIngest, transfer);
  }

  return {
    ingest({ raw, headers = {}, correlationId }) {
      return new Promise((resolve, reject) => {
        if (!next) {
          next = [];
          setImmediate(sendNext);
        }
        const id = nextId++;
        pending.set(id, { resolve, reject });
        next.push({ id, raw, transport: transportHeaders(headers), correlationId });
      });
    },
    heapStatistics: () => thread.worker.getHeapStatistics(),
    stop: () => thread.stop(),
  };
}
