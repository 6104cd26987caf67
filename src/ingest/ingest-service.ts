// Ingest after the HTTP edge: reads what a request body holds (to answer its sender with counts, or refuse it as
// malformed), hands the body itself to the inbox writer, which group-commits it durably, and resolves once it is
// committed: a caller may acknowledge its sender then. The router reads the stored body again and does the rest
// (quarantine of what is not understood, transport notices, dedupe, fan-out), in the same transaction that
// takes it out of the inbox.
import type { EngineHooks } from '../engine/hooks.ts';
import type { Metrics } from '../observability/metrics.ts';
import { bodyText, inboxRow } from '../store/inbox.ts';
import type { InboxWriter } from './inbox-writer.ts';
import type { ControlMessage } from './message.ts';
import { normalizeBody, transportHeaders } from './normalize.ts';

export interface IngestOutcome {
  /** Notifications durably stored (duplicates among them are dropped when routed). */
  accepted: number;
  /** Parts not understood: stored too, and quarantined as dead letters when routed. */
  quarantined: number;
  /** Subscription test notifications: acknowledged and otherwise ignored. */
  ignored: number;
  controls: ControlMessage[];
}

export interface IngestRequest {
  /** The body exactly as received (UTF-8 JSON): this is what is stored. */
  raw: Uint8Array;
  headers?: Record<string, string | string[] | undefined>;
  /** The sender's correlation id for everything in the body; otherwise each notification's own id is used. */
  correlationId?: string | undefined;
  source?: 'http' | 'cli';
}

export type IngestResult = { ok: true; outcome: IngestOutcome } | { ok: false; problem: 'malformed-json'; detail: string };

export interface IngestService {
  ingest(request: IngestRequest): Promise<IngestResult>;
}

/**
 * Reads and commits bodies: `writer` is the inbox writer on this thread (in `ctbridge start`, this runs on the
 * ingest thread; see ingest-thread.ts).
 */
export function createIngestService(deps: { writer: InboxWriter }): IngestService {
  const { writer } = deps;
  return {
    async ingest({ raw, headers = {}, correlationId }) {
      // Only the counts outlive this call: the parsed body is garbage before the commit is awaited, so bodies
      // waiting for their commit hold no objects on the heap (with many in flight, that is most of the garbage
      // collector's work).
      const read = readBody(raw, headers);
      if (!read.ok) return read;
      const { outcome, items, stored } = read;
      if (stored) await writer.append([inboxRow({ body: raw, transport: transportHeaders(headers), correlationId, items }, Date.now())]);
      return { ok: true, outcome };
    },
  };
}

/** Counts what `service` ingests (metrics, the ingest hook), on the thread that answers the senders. */
export function withIngestMetrics(service: IngestService, metrics: Metrics, hooks?: EngineHooks): IngestService {
  return {
    async ingest(request) {
      const result = await service.ingest(request);
      if (result.ok) {
        const { accepted, quarantined } = result.outcome;
        if (accepted > 0) metrics.ingested.inc({ source: request.source ?? 'http' }, accepted);
        hooks?.onIngested?.({ accepted, quarantined });
      }
      return result;
    },
  };
}

/** What a body holds, by kind, and whether the router has anything to do with it. */
function readBody(raw: Uint8Array, headers: Record<string, string | string[] | undefined>): { ok: true; outcome: IngestOutcome; items: number; stored: boolean } | { ok: false; problem: 'malformed-json'; detail: string } {
  let body: unknown;
  try {
    body = JSON.parse(bodyText(raw));
  } catch (error) {
    return { ok: false, problem: 'malformed-json', detail: `the body is not valid JSON: ${(error as Error).message}` };
  }
  const outcome: IngestOutcome = { accepted: 0, quarantined: 0, ignored: 0, controls: [] };
  const items = normalizeBody(body, headers);
  let stored = false;
  for (const item of items) {
    if (item.kind === 'notification') outcome.accepted += 1;
    else if (item.kind === 'unrecognised') outcome.quarantined += 1;
    else if (item.control.kind === 'subscription-test') outcome.ignored += 1;
    else outcome.controls.push(item.control);
    // Event Grid's validation and the subscription test are answered here; the rest is the router's to do.
    if (item.kind !== 'control' || item.control.kind === 'sns-subscription-confirmation') stored = true;
  }
  return { ok: true, outcome, items: items.length, stored };
}
