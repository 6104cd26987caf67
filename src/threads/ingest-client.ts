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
    thread.send({ type: 'ingest', requests }, movable(requests));
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

/**
 * What the ingest thread can take over instead of copying: the request is done with its body. A body that owns
 * its whole ArrayBuffer (over half of Buffer.poolSize, 32 KB on Node 24: Fastify concatenates the chunks into a
 * fresh buffer) moves as it is. A smaller body is a view into Node's shared allocation pool, and posting a view
 * copies the whole buffer under it (64 KB for a 1.5 KB notification, on both threads): the small bodies of one
 * message are packed into one buffer of their exact size instead, which moves, and `requests` point into it.
 */
function movable(requests: ThreadIngestRequest[]): ArrayBuffer[] {
  const moved = new Set<ArrayBuffer>();
  const small: ThreadIngestRequest[] = [];
  let packedBytes = 0;
  for (const request of requests) {
    const { raw } = request;
    if (raw.byteOffset === 0 && raw.byteLength === raw.buffer.byteLength && raw.buffer instanceof ArrayBuffer) moved.add(raw.buffer);
    else {
      small.push(request);
      packedBytes += raw.byteLength;
    }
  }
  if (small.length > 0) {
    const packed = new ArrayBuffer(packedBytes);
    let offset = 0;
    for (const request of small) {
      const copy = new Uint8Array(packed, offset, request.raw.byteLength);
      copy.set(request.raw);
      request.raw = copy;
      offset += copy.byteLength;
    }
    moved.add(packed);
  }
  return [...moved];
}
