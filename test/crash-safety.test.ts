// Crash safety: a real `ctbridge start` child process is SIGKILLed again and again at random moments while
// commercetools changes (made in the emulator) are posted to it concurrently. Afterwards every acknowledged
// message's event is at the sink exactly once, every customer at the sink equals its final commercetools state,
// no key ever went back to an older version, nothing was dead-lettered, and a final SIGTERM stops it cleanly.
// A second, deterministic case kills ctbridge exactly after the destination applied a record but before ctbridge
// learnt so, the window the random kills only hit by chance.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createCommercetoolsClient, type CommercetoolsClient } from '../src/commercetools/client.ts';
import { compileMapping } from '../src/mapping/record-mapping.ts';
import { createChangeGenerator, type AppliedChange, type ChangeGenerator } from '../src/sandbox/changes.ts';
import { emulatorCredentials, startEmulator, type Emulator } from '../src/sandbox/emulator.ts';
import { Random } from '../src/sandbox/seed.ts';
import { startSink, type Sink } from '../src/sandbox/sink.ts';
import { freePort, spawnCtbridge, waitForReady, writeConfig, type ChildCtbridge, type ChildExit } from './support/child-ctbridge.ts';
import { ADMIN_TOKEN, INGEST_TOKEN, eventually, untilDone } from './support/harness.ts';
import { testStores, type TestStore } from './support/stores.ts';

const CUSTOMERS = 50;
const POSTERS = 6;
/** Kills in all; those in START_UP_KILLS land during start-up (migrations, recovery), the rest under load. */
const KILLS = 7;
const START_UP_KILLS = new Set([0, 3]);
const SIGNING_SECRET = 'crash-test-signing-secret-0123';
const CUSTOMER_FIELDS = { key: 'key', email: 'email', firstName: 'firstName', lastName: 'lastName', city: 'addresses[0].city' };
const EVENT_TYPES = ['CustomerCreated', 'CustomerFirstNameSet', 'CustomerLastNameSet', 'CustomerEmailChanged'];
// Names flip between a few values so that a field often changes back to a value the destination had before.
const FIRST_NAMES = ['Ada', 'Grace'];
const LAST_NAMES = ['Lovelace', 'Hopper', 'Turing'];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Proxy {
  url: string;
  /** Requests for which this returns true reach the sink, but their answer is never given back to ctbridge. */
  hold: ((request: IncomingMessage) => boolean) | undefined;
  close(): Promise<void>;
}

/**
 * Sits between ctbridge and the sink: forwards each request at once, then holds the answer back a little (or for
 * good, see `hold`). The destination has then applied a batch that ctbridge has not yet recorded as sent, which
 * is the window a crash must be safe in; without the delay a random kill would rarely land there.
 */
async function startSlowProxy(target: string, random: Random): Promise<Proxy> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const held = proxy.hold?.(req) ?? false;
      const headers = Object.fromEntries(
        Object.entries(req.headers).flatMap(([name, value]) => (['host', 'connection', 'content-length', 'keep-alive'].includes(name) || value === undefined ? [] : [[name, String(value)]])),
      );
      fetch(`${target}${req.url ?? '/'}`, { method: req.method ?? 'POST', headers, ...(chunks.length > 0 && { body: Buffer.concat(chunks) }) })
        .then(async (response) => {
          const body = Buffer.from(await response.arrayBuffer());
          if (held) return;
          await sleep(random.int(0, 80));
          res.writeHead(response.status, { 'content-type': response.headers.get('content-type') ?? 'application/json' }).end(body);
        })
        .catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const proxy: Proxy = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hold: undefined,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return proxy;
}

/** Everything around the child process: commercetools (emulator), the sink behind the proxy, the config file. */
interface Setup {
  seed: number;
  random: Random;
  dir: string;
  logFile: string;
  baseUrl: string;
  configPath: string;
  emulator: Emulator;
  commercetools: CommercetoolsClient;
  generator: ChangeGenerator;
  sink: Sink;
  proxy: Proxy;
  /** Seed and log file, for assertion messages. */
  context: string;
  close(): Promise<void>;
}

async function setUp(testStore: TestStore): Promise<Setup> {
  const seed = Number(process.env.CTBRIDGE_CRASH_SEED ?? Date.now() % 1_000_000);
  const dir = mkdtempSync(join(tmpdir(), 'ctbridge-crash-'));
  const logFile = join(dir, 'ctbridge.log');
  const emulator = await startEmulator({ projectKey: 'crash-test' });
  const credentials = emulatorCredentials(emulator);
  const commercetools = createCommercetoolsClient(credentials);
  const sink = await startSink({ signingSecret: SIGNING_SECRET });
  const proxy = await startSlowProxy(sink.url, new Random(seed + 1));
  const port = await freePort();
  const configPath = join(dir, 'ctbridge.yaml');
  writeConfig(configPath, {
    commercetools: credentials,
    server: { port, host: '127.0.0.1', ingest: { auth: { type: 'bearer', token: INGEST_TOKEN } }, adminToken: ADMIN_TOKEN },
    store: await testStore.create(),
    // Short leases: the work a killed process held is taken over quickly.
    engine: { pollIntervalMs: 50, leaseMs: 2_000, backoffBaseMs: 50, backoffMaxMs: 1_000 },
    destinations: [
      {
        name: 'sink',
        type: 'http',
        url: `${proxy.url}/records`,
        eventsUrl: `${proxy.url}/events`,
        batchSize: 10,
        timeoutMs: 5_000,
        signingSecret: SIGNING_SECRET,
        records: { customer: { fields: CUSTOMER_FIELDS } },
        events: { customerActivity: { on: EVENT_TYPES, fields: { customerId: 'resource.id', type: 'type', version: 'resourceVersion' } } },
      },
    ],
  });
  return {
    seed,
    random: new Random(seed),
    dir,
    logFile,
    baseUrl: `http://127.0.0.1:${port}`,
    configPath,
    emulator,
    commercetools,
    generator: createChangeGenerator(commercetools, { seed }),
    sink,
    proxy,
    context: `seed ${seed}, child log ${logFile}`,
    async close() {
      await commercetools.close();
      await emulator.close();
      await proxy.close();
      await sink.close();
    },
  };
}

type Status = { destinations: Array<{ pendingRecords: number; pendingEvents: number; inFlight: number; deadLetters: number }>; quarantined: number; inbox: number };

/** Polls the status API until nothing is pending or in flight (failing if that stops shrinking), and returns the last status. */
async function drained(s: Setup): Promise<Status> {
  let status: Status | undefined;
  await untilDone(async () => {
    const response = await fetch(`${s.baseUrl}/v1/status`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    status = (await response.json()) as Status;
    const remaining = status.inbox + status.destinations.reduce((sum, d) => sum + d.pendingRecords + d.pendingEvents + d.inFlight, 0);
    return { done: remaining === 0, remaining };
  }, `the queues to drain (${s.context})`);
  return status!;
}

/** What the sink must hold for these customers: their current commercetools state, mapped. */
async function expectedRecords(s: Setup, customerIds: string[]): Promise<{ records: Record<string, unknown>; versions: Map<string, number> }> {
  const mapping = compileMapping({ fields: CUSTOMER_FIELDS });
  const found = await s.commercetools.fetchByIds('customer', customerIds);
  expect(found.size).toBe(customerIds.length);
  const mapped = await Promise.all(customerIds.map(async (id) => [id, await mapping.apply(found.get(id))] as const));
  return {
    records: Object.fromEntries(mapped.map(([id, result]) => [id, result.skip ? null : result.payload])),
    versions: new Map(customerIds.map((id) => [id, found.get(id)!.version as number])),
  };
}

/** One notification the test may post: a Message (an event at the sink) or a ResourceUpdated change notification. */
interface Delivery {
  key: string;
  body: Record<string, unknown>;
  message: { id: string; type: string; customerId: string } | undefined;
}

describe.each(testStores)('crash safety on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('loses no acknowledged message and applies none twice when SIGKILLed repeatedly under load', async () => {
    const s = await setUp(testStore);
    const { random, generator, sink, context } = s;
    const customerIds: string[] = [];
    const deliveries = new Map<string, Delivery>();
    const acked = new Set<string>();
    /** Notifications acknowledged during the kill phase (the redelivery at the end never posts them again). */
    let ackedUnderChaos = new Set<string>();
    /** Answers other than 2xx from a process that was up (a crash only ever shows as a failed connection). */
    const rejections: string[] = [];
    const exits: ChildExit[] = [];
    let child: ChildCtbridge | undefined;
    let up = false;
    let stopLoad = false;

    const post = async (batch: Delivery[], asArray: boolean): Promise<void> => {
      let response: Response;
      try {
        response = await fetch(`${s.baseUrl}/v1/ingest/commercetools`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST_TOKEN}` },
          body: JSON.stringify(asArray ? batch.map((d) => d.body) : batch[0]!.body),
          signal: AbortSignal.timeout(15_000),
        });
      } catch {
        return; // The process died (or is not up yet): not acknowledged; the sender delivers it again later.
      }
      const text = await response.text().catch(() => '');
      if (response.status >= 200 && response.status < 300) {
        const answer = JSON.parse(text) as { accepted: number; duplicates?: number; quarantined: number };
        expect(answer.accepted + (answer.duplicates ?? 0), `answer ${text} for ${batch.length} notifications`).toBe(batch.length);
        for (const d of batch) acked.add(d.key);
      } else if (up) {
        rejections.push(`${response.status}: ${text.slice(0, 300)}`);
      }
    };

    const changeSomething = async (): Promise<AppliedChange> => {
      if (customerIds.length < CUSTOMERS && (customerIds.length < POSTERS || random.chance(0.3))) {
        const created = await generator.createCustomer();
        customerIds.push(created.resource.id);
        return created;
      }
      const id = random.pick(customerIds);
      const roll = random.next();
      if (roll < 0.45) return generator.changeCustomerName(id, { firstName: random.pick(FIRST_NAMES) });
      if (roll < 0.65) return generator.changeCustomerName(id, { lastName: random.pick(LAST_NAMES) });
      if (roll < 0.8) return generator.changeCustomerName(id);
      return generator.changeCustomerEmail(id);
    };

    // One sender: changes commercetools, then posts what the subscription would deliver, alone or in arrays,
    // sometimes with the change notifications and with duplicates of notifications already acknowledged.
    const poster = async (): Promise<void> => {
      let buffer: Delivery[] = [];
      let target = 1;
      while (!stopLoad) {
        if (!up) {
          await sleep(20);
          continue;
        }
        const change = await changeSomething();
        for (const m of change.messages) {
          const delivery: Delivery = { key: m.id, body: m as unknown as Record<string, unknown>, message: { id: m.id, type: m.type, customerId: m.resource.id } };
          deliveries.set(delivery.key, delivery);
          buffer.push(delivery);
        }
        if (random.chance(0.2)) {
          for (const n of change.changes) {
            const delivery: Delivery = { key: `${n.resource.id}:${n.version}:${n.notificationType}`, body: n as unknown as Record<string, unknown>, message: undefined };
            deliveries.set(delivery.key, delivery);
            buffer.push(delivery);
          }
        }
        if (acked.size > 0 && random.chance(0.05)) buffer.push(deliveries.get(random.pick([...acked]))!);
        if (buffer.length >= target) {
          const batch = buffer;
          buffer = [];
          await post(batch, batch.length > 1 || random.chance(0.3));
          target = random.chance(0.5) ? 1 : random.int(2, 12);
        }
        await sleep(random.int(0, 15));
      }
      if (buffer.length > 0) await post(buffer, true);
    };

    try {
      const loadErrors: unknown[] = [];
      const posters = Array.from({ length: POSTERS }, () => poster().catch((error: unknown) => loadErrors.push(error)));

      for (let cycle = 0; cycle < KILLS; cycle += 1) {
        child = spawnCtbridge(s.configPath, s.logFile);
        if (START_UP_KILLS.has(cycle)) {
          // Somewhere between spawn and a little after ready (start-up takes seconds on a busy machine).
          const ready = waitForReady(s.baseUrl, child).then(() => sleep(random.int(0, 300)));
          await Promise.race([ready, sleep(random.int(100, 4_000))]);
          ready.catch(() => undefined);
        } else {
          await waitForReady(s.baseUrl, child);
          up = true;
          await sleep(random.int(400, 2_500));
          up = false;
        }
        exits.push(await child.kill('SIGKILL'));
      }

      child = spawnCtbridge(s.configPath, s.logFile);
      await waitForReady(s.baseUrl, child);
      up = true;
      await sleep(1_000);
      stopLoad = true;
      await Promise.all(posters);
      expect(loadErrors, context).toEqual([]);
      ackedUnderChaos = new Set(acked);

      // What was never acknowledged is delivered again, as a push subscription does, until it is.
      await eventually(
        async () => {
          const unacked = [...deliveries.values()].filter((d) => !acked.has(d.key));
          for (let start = 0; start < unacked.length; start += 50) await post(unacked.slice(start, start + 50), true);
          return unacked.every((d) => acked.has(d.key));
        },
        `every notification acknowledged (${context})`,
      );

      const status = await drained(s);

      expect(exits, context).toEqual(Array.from({ length: KILLS }, () => ({ code: null, signal: 'SIGKILL' })));
      expect(rejections, context).toEqual([]);

      // No dead letters, no quarantined payloads.
      expect(status.destinations.map((d) => d.deadLetters), context).toEqual([0]);
      expect(status.quarantined, context).toBe(0);
      const letters = (await (await fetch(`${s.baseUrl}/v1/dead-letters`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json()) as { items: unknown[] };
      expect(letters.items, context).toEqual([]);
      expect(sink.signatureFailures, context).toBe(0);
      expect(sink.applied.filter((item) => item.kind === 'unknown'), context).toEqual([]);

      // Events: exactly one applied per message id, none missing, none unknown.
      const messages = [...deliveries.values()].flatMap((d) => (d.message ? [d.message] : []));
      const events = sink.applied.filter((item) => item.kind === 'event');
      const eventKeys = events.map((e) => e.idempotencyKey);
      expect(new Set(eventKeys).size, `duplicate event keys (${context})`).toBe(eventKeys.length);
      const missingAcked = messages.filter((m) => ackedUnderChaos.has(m.id) && !eventKeys.includes(m.id));
      expect(missingAcked, `acknowledged messages without their event (${context})`).toEqual([]);
      expect(eventKeys.slice().sort(), context).toEqual(messages.map((m) => m.id).sort());
      const byId = new Map(messages.map((m) => [m.id, m]));
      for (const event of events) {
        const message = byId.get(event.idempotencyKey)!;
        expect(event.body, context).toMatchObject({ eventType: 'customerActivity', sourceType: message.type, payload: { customerId: message.customerId, type: message.type } });
      }

      // Records: every customer holds its final commercetools state, and versions only went forward.
      const expected = await expectedRecords(s, customerIds);
      const actual = Object.fromEntries(customerIds.map((id) => [id, sink.records.get(`customer/${id}`)]));
      // On a mismatch, say for each affected customer what commercetools announced and what the sink applied.
      const history = customerIds
        .filter((id) => JSON.stringify(actual[id]) !== JSON.stringify(expected.records[id]))
        .map((id) => {
          const announced = [...deliveries.values()]
            .filter((d) => d.message?.customerId === id)
            .map((d) => `v${String(d.body.resourceVersion)} ${d.message!.type}${ackedUnderChaos.has(d.key) ? '' : ' (redelivered)'} ${JSON.stringify(d.body.firstName ?? d.body.lastName ?? d.body.email ?? '')}`);
          const applied = sink.applied.filter((item) => item.kind === 'record' && item.body.id === id).map((item) => `v${String(item.body.version)} ${JSON.stringify(item.body.fields)}`);
          return `customer ${id} (now v${expected.versions.get(id)}):\n  announced: ${announced.join('; ')}\n  applied: ${applied.join('; ')}`;
        });
      expect(actual, `records at the sink (${context})\n${history.join('\n')}`).toEqual(expected.records);
      for (const id of customerIds) {
        const versions = sink.versions.get(`customer/${id}`) ?? [];
        const backwards = versions.filter((v, i) => i > 0 && v < versions[i - 1]!);
        expect(backwards, `versions applied for customer ${id}: ${versions.join(',')} (${context})`).toEqual([]);
        // Versions whose mapped record did not change (a name set to the value it had) are rightly not sent.
        expect(versions.at(-1) ?? 0, context).toBeLessThanOrEqual(expected.versions.get(id)!);
      }
      const knownRecordKey = new RegExp(`^sink:customer:(${customerIds.join('|')}):\\d+$`);
      expect(sink.applied.filter((item) => item.kind === 'record' && !knownRecordKey.test(item.idempotencyKey)), context).toEqual([]);

      // A graceful stop after all that exits 0.
      const stopped = await child.kill('SIGTERM');
      child = undefined;
      expect(stopped, context).toEqual({ code: 0, signal: null });
      console.info(
        `crash safety on ${testStore.name}: ${KILLS} kills, ${deliveries.size} notifications (${messages.length} messages, ${ackedUnderChaos.size} acknowledged under load), ` +
          `${sink.applied.length} items applied, ${[...sink.deliveries.values()].filter((n) => n > 1).length} keys delivered again after a crash; ${context}`,
      );
      rmSync(s.dir, { recursive: true, force: true });
    } finally {
      stopLoad = true;
      await child?.kill('SIGKILL');
      await s.close();
    }
  }, 600_000);

  it('does not forget a record the destination applied just before the crash', async () => {
    const s = await setUp(testStore);
    const { generator, sink, proxy, context } = s;
    let child: ChildCtbridge | undefined;
    const post = async (change: AppliedChange) => {
      const response = await fetch(`${s.baseUrl}/v1/ingest/commercetools`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST_TOKEN}` },
        body: JSON.stringify(change.messages),
      });
      expect(response.status, context).toBe(202);
    };
    try {
      child = spawnCtbridge(s.configPath, s.logFile);
      await waitForReady(s.baseUrl, child);
      const created = await generator.createCustomer();
      const id = created.resource.id;
      await post(await generator.changeCustomerName(id, { firstName: 'Ada' }));
      await post(created);
      await eventually(() => sink.records.get(`customer/${id}`)?.firstName === 'Ada', `Ada at the sink (${context})`);
      await drained(s);

      // The destination applies the rename, but ctbridge never hears back: it dies waiting.
      proxy.hold = (request) => request.url === '/records';
      await post(await generator.changeCustomerName(id, { firstName: 'Grace' }));
      await eventually(() => sink.records.get(`customer/${id}`)?.firstName === 'Grace', `Grace at the sink (${context})`);
      expect(await child.kill('SIGKILL'), context).toEqual({ code: null, signal: 'SIGKILL' });
      proxy.hold = undefined;

      // Meanwhile the name goes back to what ctbridge last recorded as sent.
      const back = await generator.changeCustomerName(id, { firstName: 'Ada' });
      child = spawnCtbridge(s.configPath, s.logFile);
      await waitForReady(s.baseUrl, child);
      await post(back);
      await drained(s);

      const expected = await expectedRecords(s, [id]);
      expect({ [id]: sink.records.get(`customer/${id}`) }, `record at the sink (${context})`).toEqual(expected.records);
      expect(await child.kill('SIGTERM'), context).toEqual({ code: 0, signal: null });
      child = undefined;
      rmSync(s.dir, { recursive: true, force: true });
    } finally {
      await child?.kill('SIGKILL');
      await s.close();
    }
  });
});
