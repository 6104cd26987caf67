// Ingest after the HTTP edge: reads what a request body holds (to answer its sender with counts, or refuse it as
// malformed), hands the body itself to the inbox writer, which group-commits it durably, and resolves once it is
// committed: a caller may acknowledge its sender then. The router reads the stored body again and does the rest
// (quarantine of what is not understood, transport notices, dedupe, fan-out), in the same transaction that
// takes it out of the inbox. A body is sealed (pii/sealed.ts) before it is stored, and one holding more items
// than `maxItemsPerBody` is refused before anything is stored: the work one request can create stays bounded.
// Storefront events (intake.ts) take the same path: validated against their schema here (a wrong field refuses
// the whole body, naming the field), stored with their intake, and routed like notifications.
import type { EngineHooks } from '../engine/hooks.ts';
import type { Metrics } from '../observability/metrics.ts';
import { bodyText, inboxRow } from '../store/inbox.ts';
import type { Sealer } from '../pii/sealed.ts';
import type { InboxWriter } from './inbox-writer.ts';
import type { ControlMessage } from './message.ts';
import { normalizeIntake, transportOf, type Intake } from './intake.ts';
import { transportHeaders } from './normalize.ts';
import { readStorefrontBody, type InvalidField } from './storefront-events.ts';

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
  source?: 'http' | 'cli' | 'storefront';
  /** The intake the body came in through (storefront events); commercetools notifications when absent. */
  intake?: Intake | undefined;
}

/** A refused body: nothing of it was stored. `status` is the HTTP status to answer with. */
export type IngestRefusal =
  | { ok: false; status: 400; problem: 'malformed-json'; detail: string }
  | { ok: false; status: 413; problem: 'too-many-items'; detail: string }
  /** Storefront events that do not match their schema: each wrong field by JSON pointer. */
  | { ok: false; status: 400; problem: 'invalid-event'; detail: string; invalid: InvalidField[] };

export type IngestResult = { ok: true; outcome: IngestOutcome } | IngestRefusal;

/** Items (notifications, unrecognised parts) one body may hold unless configured otherwise (server.maxItemsPerBody). */
export const DEFAULT_MAX_ITEMS_PER_BODY = 1_000;

export interface IngestService {
  ingest(request: IngestRequest): Promise<IngestResult>;
}

/**
 * Reads and commits bodies: `writer` is the inbox writer on this thread (in `ctbridge start`, this runs on the
 * ingest thread; see threads/ingest-thread.ts), `sealer` encrypts each body before it is stored.
 */
export function createIngestService(deps: {
  writer: InboxWriter;
  sealer: Sealer;
  maxItemsPerBody?: number;
  /** The bodies handed in are this service's to change (the ingest thread's): sealed in place, not copied first. */
  ownsBodies?: boolean;
}): IngestService {
  const { writer, sealer, maxItemsPerBody = DEFAULT_MAX_ITEMS_PER_BODY, ownsBodies = false } = deps;
  return {
    async ingest({ raw, headers = {}, correlationId, intake }) {
      // Only the counts outlive this call: the parsed body is garbage before the commit is awaited, so bodies
      // waiting for their commit hold no objects on the heap (with many in flight, that is most of the garbage
      // collector's work).
      const read = readBody(raw, headers, maxItemsPerBody, intake);
      if (!read.ok) return read;
      const { outcome, items, stored } = read;
      if (!stored) return { ok: true, outcome };
      const body = ownsBodies ? raw : Buffer.from(raw);
      const seal = sealer.sealInPlace(body);
      await writer.append([inboxRow({ body, seal, transport: transportOf(intake, transportHeaders(headers)), correlationId, items }, Date.now())]);
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
function readBody(raw: Uint8Array, headers: Record<string, string | string[] | undefined>, maxItems: number, intake: Intake | undefined): { ok: true; outcome: IngestOutcome; items: number; stored: boolean } | IngestRefusal {
  let body: unknown;
  try {
    body = JSON.parse(bodyText(raw));
  } catch (error) {
    return { ok: false, status: 400, problem: 'malformed-json', detail: `the body is not valid JSON: ${(error as Error).message}` };
  }
  const outcome: IngestOutcome = { accepted: 0, quarantined: 0, ignored: 0, controls: [] };
  // A storefront is a browser: what it sends wrong is refused whole with the fields named, never quarantined.
  if (intake?.kind === 'storefront') {
    const read = readStorefrontBody(body);
    if (!read.ok) {
      const detail = `the events do not match the storefront event schema: ${read.invalid.map((i) => `${i.pointer || '(the body)'}: ${i.reason}`).join('; ')}`;
      return { ok: false, status: 400, problem: 'invalid-event', detail, invalid: read.invalid };
    }
  }
  // Reading stops at the first item past the limit, so an oversized body costs no more than an allowed one.
  const { items, more } = normalizeIntake(body, intake, headers, 0, maxItems);
  if (more) {
    const count = Array.isArray(body) && body.length > maxItems ? `${body.length} elements` : `more than ${maxItems} items`;
    return { ok: false, status: 413, problem: 'too-many-items', detail: `the body holds ${count}; at most ${maxItems} notifications (or other parts) are accepted per request (server.maxItemsPerBody): send them in smaller batches` };
  }
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
