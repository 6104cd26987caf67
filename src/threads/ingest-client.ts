// What the HTTP (main) thread holds of the ingest thread (ingest-thread.ts): an IngestService whose requests made
// in one tick travel as one message, each settling with the thread's answer once its body is committed (or refused).
import type { MessagePort } from 'node:worker_threads';
import type { IngestResult, IngestService } from '../ingest/ingest-service.ts';
import { transportHeaders } from '../ingest/normalize.ts';
import { PendingRequests } from './channel.ts';
import type { FromIngest, IngestThreadData, ThreadIngestRequest, ToIngest } from './ingest-thread.ts';
import { startThread } from './start.ts';

export interface IngestClient extends IngestService {
  heapStatistics(): Promise<{ used_heap_size: number; total_heap_size: number }>;
  stop(): Promise<void>;
}

/**
 * Starts the ingest thread on `storeUrl`; it tells `enginePort` (transferred to it) about every commit and seals
 * bodies under `sealKey`.
 */
export async function startIngestThread(settings: Omit<IngestThreadData, 'enginePort'>, enginePort: MessagePort, onFailure: (error: Error) => void): Promise<IngestClient> {
  const pending = new PendingRequests<IngestResult>();
  const thread = await startThread<ToIngest, FromIngest>(
    'ingest',
    new URL('./ingest-thread.ts', import.meta.url),
    { workerData: { ...settings, enginePort } satisfies IngestThreadData, transferList: [enginePort] },
    (message) => {
      if (message.type === 'ingested') {
        for (const answer of message.results) {
          pending.settle(answer.id, 'error' in answer ? { error: new Error(`the inbox append failed: ${answer.error}`) } : { value: answer.result });
        }
      }
    },
    (error) => {
      pending.settleAll({ error: new Error('the ingest thread stopped before the body was committed') });
      onFailure(error);
    },
  );

  let next: ThreadIngestRequest[] | undefined;
  function sendNext(): void {
    const requests = next!;
    next = undefined;
    if (thread.exited()) {
      for (const { id } of requests) pending.settle(id, { error: new Error('the ingest thread has stopped; nothing was stored') });
      return;
    }
    // A body that owns its whole ArrayBuffer (any body over a few KB: Fastify concatenates the chunks into a fresh
    // buffer) moves to the thread instead of being copied; the request is done with it.
    const transfer = requests.flatMap(({ raw }) => (raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength && raw.buffer instanceof ArrayBuffer ? [raw.buffer] : []));
    thread.send({ type: 'ingest', requests }, transfer);
  }

  return {
    ingest({ raw, headers = {}, correlationId, intake }) {
      if (!next) {
        next = [];
        setImmediate(sendNext);
      }
      const { id, answer } = pending.add();
      next.push({ id, raw, transport: transportHeaders(headers), correlationId, intake });
      return answer;
    },
    heapStatistics: () => thread.heapStatistics(),
    stop: () => thread.stop(),
  };
}
