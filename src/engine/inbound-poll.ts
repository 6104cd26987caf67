// Polling a destination that cannot push its changes (`inbound: { poll: 2m }`, two-way sync): every interval, one
// process — the one holding the poll's lease in `inbound_polls` — asks the connector for the changes since the
// stored cursor (Connector.pollInbound: monday reads its boards' activity logs) and stores each as an inbound
// delivery under the change's own id, in the transaction that moves the cursor on. From there the changes are the
// same inbound work as webhooks (inbound-work.ts): deduplicated by that id, decided, written back, audited. A poll
// that fails leaves the cursor where it was and is tried again at the next interval; a poll that outlived its
// lease stores nothing (another process polls the same window again), so nothing is lost or doubled.
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Connector } from '../destinations/types.ts';
import type { Sealer } from '../pii/sealed.ts';
import { appendInbound, claimInboundPoll, finishInboundPoll, type InboundPollRow } from '../store/inbound.ts';
import type { Database } from '../store/schema.ts';
import { WorkLoop } from './work-loop.ts';

/** How often the loop looks whether a poll is due, at most (the poll's own interval may be shorter). */
const LOOK_EVERY_MS = 5_000;

export interface InboundPollDeps {
  destination: string;
  connector: Pick<Connector, 'pollInbound'>;
  db: Kysely<Database>;
  /** The poll's interval (inbound.poll). */
  intervalMs: number;
  leaseMs: number;
  /** This process's lease prefix. */
  owner: string;
  sealer: () => Promise<Pick<Sealer, 'seal'>>;
  logger: Logger;
  /** Deliveries were stored: wake the inbound work. */
  onStored: () => void;
  now?: () => number;
  /** How often the loop looks whether a poll is due (default: the interval, at most every 5 s). */
  lookEveryMs?: number;
}

/** Polls once when due and this process takes the lease; how many changes it stored, or undefined when it did not poll. */
export async function pollOnce(deps: InboundPollDeps): Promise<number | undefined> {
  const now = deps.now ?? Date.now;
  const row = await claimInboundPoll(deps.db, deps.destination, { owner: `${deps.owner}/poll`, now: now(), leaseMs: deps.leaseMs });
  if (!row) return undefined;
  return await pollClaimed(deps, row);
}

async function pollClaimed(deps: InboundPollDeps, row: InboundPollRow): Promise<number> {
  const now = deps.now ?? Date.now;
  const startedAt = now();
  try {
    if (!deps.connector.pollInbound) throw new Error(`the ${deps.destination} connector cannot list its changes`);
    const page = await deps.connector.pollInbound(row.cursor ?? undefined, startedAt);
    const sealer = await deps.sealer();
    let stored = 0;
    const finished = await deps.db.transaction().execute(async (trx) => {
      if (!(await finishInboundPoll(trx, row, { cursor: page.cursor, dueAt: startedAt + deps.intervalMs, now: startedAt }))) return false;
      for (const delivery of page.deliveries) {
        const outcome = await appendInbound(trx, { destination: deps.destination, dedupeKey: delivery.dedupeKey, body: sealer.seal(JSON.stringify(delivery.body)), correlationId: `poll:${delivery.dedupeKey}`.slice(0, 200), now: startedAt });
        if (outcome === 'stored') stored += 1;
      }
      return true;
    });
    if (!finished) {
      deps.logger.warn('the poll outlived its lease; its changes are left to the next poll');
      return 0;
    }
    if (stored > 0) deps.onStored();
    deps.logger.debug({ listed: page.deliveries.length, stored }, 'polled the destination for changes');
    return stored;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    await finishInboundPoll(deps.db, row, { error: message.slice(0, 1000), dueAt: startedAt + deps.intervalMs }).catch(() => undefined);
    deps.logger.warn({ error: message }, 'polling the destination for changes failed; trying again at the next interval');
    return 0;
  }
}

/** The loop that polls when due. */
export function createInboundPoller(deps: InboundPollDeps): WorkLoop<InboundPollRow> {
  const now = deps.now ?? Date.now;
  return new WorkLoop<InboundPollRow>({
    name: 'inbound-poll',
    concurrency: 1,
    batchSize: 1,
    pollIntervalMs: deps.lookEveryMs ?? Math.min(deps.intervalMs, LOOK_EVERY_MS),
    logger: deps.logger,
    claim: async () => {
      const row = await claimInboundPoll(deps.db, deps.destination, { owner: `${deps.owner}/poll`, now: now(), leaseMs: deps.leaseMs });
      return row ? [row] : [];
    },
    process: async ([row]) => {
      await pollClaimed(deps, row!);
    },
  });
}
