// Leases (issue 11, B): a send that outlasts `engine.leaseMs` — a destination that holds the request, or a 429 whose
// Retry-After pauses the destination for longer — never lets a second send of the same key start beside it, the
// newest version is what the destination ends with, and the audit log tells the sends in order. A finish from a
// lease that was lost is refused and leaves the key dirty and unconfirmed; a key in flight in this process is
// handed back to its batch when a claim takes it after its row's lease ran out. On both stores.
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { Leases, renewedWhile } from '../src/engine/leases.ts';
import type { EngineHooks } from '../src/engine/hooks.ts';
import type { SinkRequest } from '../src/sandbox/sink.ts';
import { auditOf } from '../src/store/audit-log.ts';
import { LEASE_LOST, RecordQueue, type RecordRow } from '../src/store/record-queue.ts';
import { openStore, type Store } from '../src/store/store.ts';
import { testStores } from './support/stores.ts';
import { eventually, metricValue, startHarness, type Harness } from './support/harness.ts';

const LEASE_MS = 300;
// The client's timeout must not end a held request before the test does.
const destination = { timeoutMs: 30_000 };

/** The claim rounds of the destination's workers, as the engine reports them. */
function claimRounds() {
  const rounds: Array<{ at: number; kind: 'record' | 'event'; claimed: number }> = [];
  const hooks: EngineHooks = { onClaim: (event) => void rounds.push({ at: Date.now(), kind: event.kind, claimed: event.claimed }) };
  return {
    hooks,
    /** Rounds of `kind` that started after `at`, and how many items they claimed together. */
    since(kind: 'record' | 'event', at: number) {
      const after = rounds.filter((round) => round.kind === kind && round.at > at);
      return { count: after.length, claimed: after.reduce((sum, round) => sum + round.claimed, 0) };
    },
  };
}

/** What a request to the sink is about: `customer/<id>` for a record, the idempotency key for an event. */
function subjectOf(request: SinkRequest): string | undefined {
  const body = request.body as { kind?: string; recordType?: string; id?: string; idempotencyKey?: string } | undefined;
  if (body?.kind === 'record') return `${body.recordType}/${body.id}`;
  if (body?.kind === 'event') return body.idempotencyKey;
  return undefined;
}

/**
 * Watches the sink for two requests about one subject open at the same time. `hold(request)` returns a condition
 * (or undefined to answer at once); a held request is answered once the condition holds or another request about
 * its subject arrives (which is the overlap this test is about: no reason to wait any longer).
 */
function watchOverlaps(h: Harness, hold: (request: SinkRequest) => (() => boolean | Promise<boolean>) | undefined) {
  const open = new Map<string, number>();
  const overlaps: string[] = [];
  const arrivals = new Map<string, number>();
  h.sink.faultFor = (request) => {
    const subject = subjectOf(request);
    if (subject === undefined) return undefined;
    arrivals.set(subject, (arrivals.get(subject) ?? 0) + 1);
    if ((open.get(subject) ?? 0) > 0) overlaps.push(subject);
    const condition = hold(request);
    if (!condition) return undefined;
    open.set(subject, (open.get(subject) ?? 0) + 1);
    const seen = arrivals.get(subject)!;
    const until = eventually(async () => arrivals.get(subject)! > seen || (await condition()), `the held request about ${subject} to be released`).finally(() => open.set(subject, open.get(subject)! - 1));
    return { kind: 'hold', until };
  };
  return overlaps;
}

async function recordRow(h: Harness, id: string): Promise<RecordRow | undefined> {
  return h.runtime.store.db.selectFrom('records').selectAll().where('resource_id', '=', id).executeTakeFirst();
}

/** The record sync of `id` is over: nothing dirty, nothing leased. */
async function settled(h: Harness, id: string): Promise<boolean> {
  const row = await recordRow(h, id);
  return row !== undefined && row.dirty_seq === row.processed_seq && row.lease_owner === null;
}

/** The versions the audit log says were sent (record.upsert), in the order it logged them, and every outcome. */
async function auditedUpserts(h: Harness, id: string): Promise<{ versions: Array<number | null>; outcomes: string[] }> {
  const entries = (await auditOf(h.runtime.store.db, id)).filter((entry) => entry.action === 'record.upsert');
  return { versions: entries.filter((entry) => entry.outcome === 'ok').map((entry) => entry.version), outcomes: entries.map((entry) => entry.outcome) };
}

function expectInOrder(h: Harness, id: string): void {
  const versions = h.sink.versions.get(`customer/${id}`) ?? [];
  for (let i = 1; i < versions.length; i += 1) expect(versions[i]!, `versions at the sink: ${versions.join(',')}`).toBeGreaterThan(versions[i - 1]!);
  for (const [key, count] of h.sink.deliveries) if (key.includes(`:${id}:`)) expect(count, `deliveries of ${key}`).toBe(1);
}

describe.each(testStores)('leases on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('a send held longer than the lease keeps it: no second send overlaps, and the newest version is synced after it', async () => {
    const rounds = claimRounds();
    const h = await startHarness({ storeUrl: await testStore.create(), engine: { leaseMs: LEASE_MS }, destination, hooks: rounds.hooks });
    try {
      let leaseEnd: number | undefined;
      let renewedUntil = 0;
      // v1 is held until its lease (as claimed) has ended and three more claim rounds found nothing to claim.
      const overlaps = watchOverlaps(h, (request) =>
        subjectOf(request) === 'customer/slow' && (request.body as { version: number }).version === 1
          ? async () => {
              const row = (await recordRow(h, 'slow'))!;
              leaseEnd ??= row.lease_until ?? undefined;
              renewedUntil = Math.max(renewedUntil, row.lease_until ?? 0);
              if (leaseEnd === undefined || Date.now() <= leaseEnd) return false;
              const after = rounds.since('record', leaseEnd);
              return after.claimed === 0 && after.count >= 3 && row.seen_version === 2;
            }
          : undefined,
      );
      expect((await h.post(h.commercetools.upsertCustomer('slow', { email: 'slow@example.com', firstName: 'One', lastName: 'Slow' }))).status).toBe(202);
      await eventually(() => h.sink.requests.some((r) => subjectOf(r) === 'customer/slow'), 'v1 at the sink (held)');
      expect((await h.post(h.commercetools.upsertCustomer('slow', { firstName: 'Two' }))).status).toBe(202);

      await eventually(() => h.sink.records.get('customer/slow')?.firstName === 'Two', 'v2 at the sink');
      await eventually(() => settled(h, 'slow'), 'the key clean and unleased');
      expect(overlaps).toEqual([]);
      // The lease was renewed while v1 was held, past its end as claimed.
      expect(renewedUntil).toBeGreaterThan(leaseEnd!);
      expect(h.sink.records.get('customer/slow')).toEqual({ email: 'slow@example.com', firstName: 'Two', lastName: 'Slow', city: null });
      expect(h.sink.versions.get('customer/slow')).toEqual([1, 2]);
      expectInOrder(h, 'slow');
      expect(await auditedUpserts(h, 'slow')).toEqual({ versions: [1, 2], outcomes: ['ok', 'ok'] });
      expect(await metricValue(h, 'ctbridge_lease_lost_total')).toBe(0);
    } finally {
      await h.stop();
    }
  });

  it('a 429 whose Retry-After outlasts the lease pauses the destination without a second send of a waiting key', async () => {
    const rounds = claimRounds();
    const h = await startHarness({ storeUrl: await testStore.create(), engine: { leaseMs: LEASE_MS }, destination, hooks: rounds.hooks });
    try {
      let limited = false;
      const overlaps = watchOverlaps(h, (request) => {
        if (subjectOf(request) !== 'customer/waits') return undefined;
        // Each send of the waiting key is held for three claim rounds: time for a second one to arrive beside it.
        const arrived = Date.now();
        return () => rounds.since('record', arrived).count >= 3;
      });
      const faultFor = h.sink.faultFor!;
      h.sink.faultFor = (request) => {
        if (!limited && subjectOf(request) === 'customer/limits') {
          limited = true;
          // Far longer than the lease, and the whole destination waits for it.
          return { kind: 'status', status: 429, retryAfterSeconds: 2 };
        }
        return faultFor(request);
      };

      await h.post(h.commercetools.upsertCustomer('limits', { email: 'limits@example.com', firstName: 'Limits' }));
      await eventually(() => limited, 'the 429');
      await h.post(h.commercetools.upsertCustomer('waits', { email: 'waits@example.com', firstName: 'One' }));
      // The waiting key is claimed, and waits out the pause; its next version arrives meanwhile.
      await eventually(async () => (await recordRow(h, 'waits'))?.lease_owner != null, 'the waiting key claimed');
      const leaseEnd = (await recordRow(h, 'waits'))!.lease_until!;
      await h.post(h.commercetools.upsertCustomer('waits', { firstName: 'Two' }));
      await eventually(() => Date.now() > leaseEnd && rounds.since('record', leaseEnd).count >= 2, 'claim rounds after the lease as claimed ended');
      expect(h.sink.requests.some((r) => subjectOf(r) === 'customer/waits'), 'nothing sent during the pause').toBe(false);

      await eventually(() => h.sink.records.get('customer/waits')?.firstName === 'Two', 'v2 at the sink', 30_000);
      await eventually(() => h.sink.records.has('customer/limits'), 'the limited record at the sink');
      await eventually(() => settled(h, 'waits'), 'the key clean and unleased');
      expect(overlaps).toEqual([]);
      expect(h.sink.versions.get('customer/waits')).toEqual([1, 2]);
      expectInOrder(h, 'waits');
      expect(await auditedUpserts(h, 'waits')).toEqual({ versions: [1, 2], outcomes: ['ok', 'ok'] });
      expect(await metricValue(h, 'ctbridge_lease_lost_total')).toBe(0);
    } finally {
      await h.stop();
    }
  });

  it('an event held longer than the lease is delivered once, never sent a second time beside itself', async () => {
    const rounds = claimRounds();
    const h = await startHarness({ storeUrl: await testStore.create(), engine: { leaseMs: LEASE_MS }, destination, hooks: rounds.hooks });
    try {
      let leaseEnd: number | undefined;
      const overlaps = watchOverlaps(h, (request) =>
        (request.body as { kind?: string }).kind === 'event'
          ? async () => {
              const row = await h.runtime.store.db.selectFrom('events').select('lease_until').executeTakeFirst();
              leaseEnd ??= row?.lease_until ?? undefined;
              if (leaseEnd === undefined || Date.now() <= leaseEnd) return false;
              const after = rounds.since('event', leaseEnd);
              return after.claimed === 0 && after.count >= 3;
            }
          : undefined,
      );
      await h.post(h.commercetools.upsertCustomer('evented', { email: 'evented@example.com', firstName: 'E' }));
      await eventually(() => h.sink.applied.some((item) => item.kind === 'event'), 'the event at the sink');
      await eventually(async () => (await h.runtime.store.db.selectFrom('events').select('id').execute()).length === 0, 'the event finished');
      expect(overlaps).toEqual([]);
      const keys = h.sink.requests.filter((r) => (r.body as { kind?: string }).kind === 'event').map((r) => r.headers['idempotency-key']);
      expect(keys).toHaveLength(1);
      const audit = (await auditOf(h.runtime.store.db, 'evented')).filter((entry) => entry.action === 'event.deliver');
      expect(audit.map((entry) => entry.outcome)).toEqual(['ok']);
    } finally {
      await h.stop();
    }
  });

  it('refuses the finish of a lost lease (the key stays dirty and unconfirmed) and hands a key in flight here back to its batch', async () => {
    const store: Store = openStore(await testStore.create());
    await store.migrate();
    try {
      const queue = new RecordQueue(store.db, store.dialect, 'dest');
      let clock = 1_000_000;
      const leases = (prefix: string) => new Leases({ prefix, leaseMs: LEASE_MS, maxBytes: 1 << 20, queue, logger: pino({ level: 'silent' }), now: () => clock });
      const here = leases('process-a');
      const there = leases('process-b');
      await store.db
        .insertInto('records')
        .values({ destination: 'dest', record_type: 'customer', resource_id: 'k', resource_type: 'customer', dirty_seq: 1, due_at: clock, correlation_id: 'c', dirtied_at: clock, seen_version: 1 })
        .execute();
      const row = async () => (await store.db.selectFrom('records').selectAll().where('resource_id', '=', 'k').executeTakeFirstOrThrow());

      const [claimed] = await here.claim(10);
      expect(claimed?.lease_owner).toMatch(/^process-a\//);
      // Renewing moves the lease (and the due time) on; only the token that holds it can.
      await queue.renew(claimed!.lease_owner!, [claimed!], clock + 5 * LEASE_MS);
      await queue.renew('process-b/1', [claimed!], clock + 50 * LEASE_MS);
      expect(await row()).toMatchObject({ lease_owner: claimed!.lease_owner, lease_until: clock + 5 * LEASE_MS, due_at: clock + 5 * LEASE_MS });
      await here.hold([claimed!], claimed!.lease_owner, async () => {
        // The row's lease ran out (a renewal held up): a claim of this process takes the key and hands it back.
        clock += 10 * LEASE_MS;
        expect(await here.claim(10)).toEqual([]);
        expect((await row()).lease_owner).toBe(claimed!.lease_owner);
      });

      // Another process takes the lease over once it ran out; the first one's finish is then refused.
      clock += 10 * LEASE_MS;
      const [taken] = await there.claim(10);
      expect(taken?.lease_owner).toMatch(/^process-b\//);
      expect(taken!.unconfirmed).toBe(1);
      const synced = (from: RecordRow, version: number) => ({ row: from, syncedVersion: version, snapshot: { firstName: `v${version}` }, destinationDeleted: false, destinationId: null, sent: { storeKey: null } });
      const entry = (from: RecordRow, version: number) => ({ row: from, at: clock, action: 'record.upsert', destination: 'dest', itemType: 'customer', resourceId: 'k', version, fields: ['firstName'], correlationId: 'c', outcome: 'ok' as const, detail: null });
      const late = await queue.finish(clock, { synced: [synced(claimed!, 1)], retries: [], deadLetters: [], audit: [entry(claimed!, 1)] });
      expect(late.refused).toEqual([claimed]);
      let now = await row();
      expect(now).toMatchObject({ lease_owner: taken!.lease_owner, synced_version: null, unconfirmed: 1, refresh: 1 });
      expect(now.dirty_seq).toBeGreaterThan(taken!.dirty_seq);

      // The holder's finish is accepted, and keeps the key dirty and unconfirmed: the late send may have landed last.
      expect((await queue.finish(clock, { synced: [synced(taken!, 1)], retries: [], deadLetters: [], audit: [entry(taken!, 1)] })).refused).toEqual([]);
      now = await row();
      expect(now).toMatchObject({ lease_owner: null, synced_version: 1, unconfirmed: 1, refresh: 1 });
      expect(now.dirty_seq).toBeGreaterThan(now.processed_seq);
      const audit = await auditOf(store.db, 'k');
      expect(audit.map((a) => [a.outcome, a.detail])).toEqual([
        ['lease-lost', LEASE_LOST],
        ['ok', null],
      ]);

      // The next claim (the batch that had it is over) reads it again and sends it whole.
      const [again] = await leases('process-c').claim(10);
      expect(again).toMatchObject({ unconfirmed: 1, refresh: 1 });
    } finally {
      await store.close();
    }
  });
  it('bounds a claim in bytes: rows past the budget go back at once, due, and a row bigger than the budget is claimed alone', async () => {
    const store: Store = openStore(await testStore.create());
    await store.migrate();
    try {
      const queue = new RecordQueue(store.db, store.dialect, 'dest');
      const clock = 1_000_000;
      const budget = 1000;
      const leases = new Leases({ prefix: 'process-a', leaseMs: LEASE_MS, maxBytes: budget, queue, logger: pino({ level: 'silent' }), now: () => clock });
      const sizes: Record<string, number> = { small1: 300, small2: 300, small3: 300, big: 5000 };
      await store.db
        .insertInto('records')
        .values(Object.entries(sizes).map(([id, size]) => ({ destination: 'dest', record_type: 'customer', resource_id: id, resource_type: 'customer', dirty_seq: 1, due_at: clock, correlation_id: 'c', dirtied_at: clock, seen_version: 1, carried_version: 1, carried_resource: 'x'.repeat(size) })))
        .execute();
      const claims: string[][] = [];
      for (;;) {
        const rows = await leases.claim(10);
        if (rows.length === 0) break;
        claims.push(rows.map((row) => row.resource_id).sort());
        // What a claim left is due at once and held by nobody.
        const left = await store.db.selectFrom('records').select(['resource_id', 'lease_owner', 'due_at']).where('lease_owner', 'is', null).execute();
        for (const row of left) expect(row.due_at).toBeLessThanOrEqual(clock);
      }
      // Every row claimed exactly once; no claim over the budget unless it is one row.
      expect(claims.flat().sort()).toEqual(Object.keys(sizes).sort());
      for (const claim of claims) if (claim.length > 1) expect(claim.reduce((sum, id) => sum + sizes[id]!, 0)).toBeLessThanOrEqual(budget);
      expect(claims).toContainEqual(['big']);
    } finally {
      await store.close();
    }
  });
});

describe('renewedWhile (the renewal both claimed batches and inbound work use)', () => {
  afterEach(() => vi.useRealTimers());

  it('renews every third of the lease while the work runs, and never again once it has failed', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    let clock = 1_000_000;
    const renewals: number[] = [];
    let fail: (error: Error) => void = () => {};
    const work = new Promise<never>((_, reject) => (fail = reject));
    const running = renewedWhile({ leaseMs: LEASE_MS, logger: pino({ level: 'silent' }), now: () => clock, renew: (leaseUntil) => Promise.resolve(void renewals.push(leaseUntil)) }, () => work);
    const settled = running.catch((error: unknown) => error);
    for (let i = 0; i < 3; i += 1) {
      clock += LEASE_MS / 3;
      await vi.advanceTimersByTimeAsync(LEASE_MS / 3);
    }
    // Each renewal moves the lease to a whole lease past the moment it is made.
    expect(renewals).toEqual([1_000_000 + (4 * LEASE_MS) / 3, 1_000_000 + (5 * LEASE_MS) / 3, 1_000_000 + 2 * LEASE_MS]);

    fail(new Error('commercetools answered 503'));
    expect(await settled).toEqual(new Error('commercetools answered 503'));
    clock += 10 * LEASE_MS;
    await vi.advanceTimersByTimeAsync(10 * LEASE_MS);
    expect(renewals).toHaveLength(3);
  });
});
