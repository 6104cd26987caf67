// Runs inside the ingest thread (`ctbridge start`): it reads the request bodies the HTTP thread hands it (parse, normalise,
// count), seals them and group-commits them to the inbox, and nothing else, so an acknowledgement never waits behind sync
// work, a routing transaction or their garbage collection, and parsing runs on a core of its own. With SQLite
// the inbox is a file of its own, whose write lock only this thread and the router's deletes take. After each
// commit it tells the engine thread (through the port it was given), which wakes the router. The HTTP thread
// holds it through ingest-client.ts.
import { workerData, type MessagePort } from 'node:worker_threads';
import { createInboxWriter } from '../ingest/inbox-writer.ts';
import { createIngestService, type IngestResult } from '../ingest/ingest-service.ts';
import type { Intake } from '../ingest/intake.ts';
import { createSealer } from '../pii/sealed.ts';
import { openInbox } from '../store/store.ts';
import { runThread } from './channel.ts';

export interface ThreadIngestRequest {
  id: number;
  raw: Uint8Array;
  /** The transport headers normalisation reads (normalize.ts transportHeaders). */
  transport: Record<string, string> | undefined;
  correlationId: string | undefined;
  /** The intake the body came in through (ingest/intake.ts). */
  intake: Intake | undefined;
}

export type ToIngest = { type: 'ingest'; requests: ThreadIngestRequest[] };
export type FromIngest = { type: 'ingested'; results: Array<{ id: number; result: IngestResult } | { id: number; error: string }> };
/** What the ingest thread tells the engine thread. */
export type CommitNotice = { type: 'committed'; items: number };

/** What the HTTP thread starts this thread with (see ingest-client.ts). */
export interface IngestThreadData {
  storeUrl: string;
  enginePort: MessagePort;
  /** The key bodies are sealed under (pii/keys.ts `sealed`): the main thread reads the root key from the store. */
  sealKey: Uint8Array;
  maxItemsPerBody: number;
}

const { storeUrl, enginePort, sealKey, maxItemsPerBody } = workerData as IngestThreadData;

await runThread<ToIngest, FromIngest>((reply) => {
  // The inbox alone; the engine thread's store runs the checkpoints.
  const inbox = openInbox(storeUrl);
  const writer = createInboxWriter(inbox, (items) => enginePort.postMessage({ type: 'committed', items } satisfies CommitNotice));
  // Each body arrived here for this thread alone (moved or copied by postMessage): sealed where it lies.
  const service = createIngestService({ writer, sealer: createSealer(Buffer.from(sealKey)), maxItemsPerBody, ownsBodies: true });
  return {
    onMessage(message) {
      // Requests of one message are read in turn and their appends share a group commit; one answer for all.
      const answers = message.requests.map(({ id, raw, transport, correlationId, intake }) =>
        service.ingest({ raw, headers: transport ?? {}, correlationId, intake }).then(
          (result) => ({ id, result }),
          (error: unknown) => ({ id, error: error instanceof Error ? error.message : String(error) }),
        ),
      );
      void Promise.all(answers).then((results) => reply({ type: 'ingested', results }));
    },
    stop() {
      // The HTTP thread stops sending before it stops this one; finish what was sent, then close.
      return writer
        .idle(10_000)
        .then(() => inbox.close())
        .finally(() => enginePort.close());
    },
  };
});
