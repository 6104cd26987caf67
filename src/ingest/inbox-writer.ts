// The durable append behind every acknowledgement: rows handed in by concurrent requests are group-committed
// (one transaction for whatever arrived while the previous commit ran), and each caller's promise settles when
// the transaction holding its rows has committed or failed. Routing happens afterwards, in the router, so an
// acknowledgement costs one insert per request. In `ctbridge start` the writer runs on the ingest thread
// (threads/ingest-thread.ts), with the inbox's own connection; in-process (sandbox, tests), beside the engine.
import { appendToInbox, type InboxRow } from '../store/inbox.ts';
import type { InboxStore } from '../store/store.ts';

export interface InboxWriter {
  /** Resolves once the rows are committed. */
  append: (rows: InboxRow[]) => Promise<void>;
}

/** The writer itself, on the thread that commits. */
export interface CommittingInboxWriter extends InboxWriter {
  /** Resolves when nothing is waiting to be committed, or after `maxWaitMs` at the latest (a clean stop). */
  idle: (maxWaitMs: number) => Promise<void>;
}

// Bound one group commit (rows, and bytes of bodies) so that a flood of requests cannot build a single enormous
// transaction.
const MAX_ROWS_PER_COMMIT = 5_000;
const MAX_BYTES_PER_COMMIT = 8 * 1024 * 1024;

interface Waiting {
  rows: InboxRow[];
  bytes: number;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** `onAppended` is called after each commit with the number of items it held (to wake the router). */
export function createInboxWriter(inbox: InboxStore, onAppended: (items: number) => void): CommittingInboxWriter {
  const queue: Waiting[] = [];
  let flushing = false;
  let scheduled = false;
  const idleWaiters = new Set<() => void>();

  function settleIdle(): void {
    for (const wake of [...idleWaiters]) wake();
  }

  async function flush(): Promise<void> {
    flushing = true;
    try {
      while (queue.length > 0) {
        const batch: Waiting[] = [];
        let count = 0;
        let bytes = 0;
        while (queue.length > 0 && (count === 0 || (count + queue[0]!.rows.length <= MAX_ROWS_PER_COMMIT && bytes + queue[0]!.bytes <= MAX_BYTES_PER_COMMIT))) {
          const next = queue.shift()!;
          batch.push(next);
          count += next.rows.length;
          bytes += next.bytes;
        }
        try {
          await appendToInbox(inbox, batch.length === 1 ? batch[0]!.rows : batch.flatMap((w) => w.rows));
        } catch (error) {
          for (const waiting of batch) waiting.reject(error);
          continue;
        }
        for (const waiting of batch) waiting.resolve();
        let items = 0;
        for (const waiting of batch) for (const row of waiting.rows) items += row.items;
        onAppended(items);
      }
    } finally {
      flushing = false;
      settleIdle();
    }
  }

  return {
    idle(maxWaitMs) {
      if (!flushing && !scheduled && queue.length === 0) return Promise.resolve();
      return new Promise((resolve) => {
        const timer = setTimeout(wake, maxWaitMs);
        function wake() {
          clearTimeout(timer);
          idleWaiters.delete(wake);
          resolve();
        }
        idleWaiters.add(wake);
      });
    },
    append(rows) {
      return new Promise((resolve, reject) => {
        let bytes = 0;
        for (const row of rows) bytes += row.body.byteLength;
        queue.push({ rows, bytes, resolve, reject });
        // Appends arriving while a commit runs wait for the next one and share it; one flush loop at a time.
        if (!flushing && !scheduled) {
          scheduled = true;
          setImmediate(() => {
            scheduled = false;
            void flush();
          });
        }
      });
    },
  };
}
