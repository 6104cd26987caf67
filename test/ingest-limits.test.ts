// What one request body can make ctbridge do (issue 11, items 1 and 6): a body of 100,000 tiny elements is refused
// before anything is stored; a body at the limit makes one quarantine dead letter for all it holds that is not
// understood; a stored row whose routing keeps failing is quarantined after a bounded number of attempts and the
// rows behind it are routed; ctbridge starts on a store holding such rows (and a 100,000-element body an older
// version accepted) and routes the good ones; message ids holding a lone surrogate never vanish or collide.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_HEAD_ATTEMPTS } from '../src/engine/inbox-router.ts';
import { createSealer } from '../src/pii/sealed.ts';
import { loadSealKey } from '../src/pii/secrets.ts';
import { startSink } from '../src/sandbox/sink.ts';
import { appendToInbox, inboxRow, pendingInbox } from '../src/store/inbox.ts';
import { openStore, type Store } from '../src/store/store.ts';
import { freePort, spawnCtbridge, waitForReady, writeConfig } from './support/child-ctbridge.ts';
import { ADMIN_TOKEN, adminFetch, customerMessage, eventually, INGEST_TOKEN, startHarness, type Harness } from './support/harness.ts';
import { testStores } from './support/stores.ts';

type Letter = { id: number; kind: string; reason: string; correlationId: string; payload: unknown };

async function deadLetters(h: Harness): Promise<Letter[]> {
  const letters: Letter[] = [];
  let after: number | null = null;
  do {
    const page = (await (await adminFetch(h, `/v1/dead-letters?limit=1000${after === null ? '' : `&after=${after}`}`)).json()) as { items: Letter[]; next: number | null };
    letters.push(...page.items);
    after = page.next;
  } while (after !== null);
  return letters;
}

const created = (id: string, extra: Record<string, unknown> = {}) => ({ ...customerMessage({ id, version: 1, email: `${id}@example.com`, firstName: 'F' }, 'CustomerCreated'), ...extra });

/** A body as a ctbridge from before the element limit stored it: unsealed, its items counted without bound. */
function legacyRow(body: string, items: number) {
  return inboxRow({ body: Buffer.from(body), transport: undefined, correlationId: 'legacy-body', items }, Date.now());
}

/** A body as ingest stores it now: sealed under the store's key. */
async function sealedRow(store: Store, body: unknown, correlationId: string) {
  const sealer = createSealer(await loadSealKey(store.db, undefined));
  const bytes = Buffer.from(JSON.stringify(body));
  const seal = sealer.sealInPlace(bytes);
  return inboxRow({ body: bytes, seal, transport: undefined, correlationId, items: Array.isArray(body) ? body.length : 1 }, Date.now());
}

/** Appends rows to the inbox of a fresh store and returns their seqs, the store closed again. */
async function storeWith(url: string, rows: (store: Store) => Promise<Array<ReturnType<typeof inboxRow>>>): Promise<number[]> {
  const store = openStore(url);
  try {
    await store.migrate();
    await appendToInbox(store.inbox, await rows(store));
    return (await pendingInbox(store)).map((row) => row.seq);
  } finally {
    await store.close();
  }
}

const tinyElements = (n: number) => `[${'{},'.repeat(n - 1)}{}]`;

describe.each(testStores)('bounds on one body on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('refuses a body of 100,000 elements with 413 naming the limit, before anything is stored', async () => {
    const h = await startHarness({ storeUrl: await testStore.create() });
    try {
      const response = await h.post(tinyElements(100_000));
      expect(response.status).toBe(413);
      expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const problem = (await response.json()) as { type: string; detail: string };
      expect(problem.type).toBe('urn:ctbridge:problem:too-many-items');
      expect(problem.detail).toMatch(/100000 elements; at most 1000 .*server\.maxItemsPerBody/);

      // Nested ones count too: a page of 1,001 messages.
      const page = { count: 1001, results: Array.from({ length: 1001 }, (_, i) => created(`page-${i}`)) };
      const nested = await h.post(page);
      expect(nested.status).toBe(413);
      expect(((await nested.json()) as { detail: string }).detail).toMatch(/more than 1000 items/);

      expect(await pendingInbox(h.runtime.store)).toEqual([]);
      // Still serving, and nothing of the refused bodies turns up once what follows is routed.
      expect((await h.post(created('after-refusal'))).status).toBe(202);
      await eventually(() => h.sink.records.has('customer/after-refusal'), 'a later message synced');
      expect(await deadLetters(h)).toEqual([]);
      const seen = await h.runtime.store.db.selectFrom('seen').select('dedupe_key').execute();
      expect(seen).toHaveLength(1);
    } finally {
      await h.stop();
    }
  });

  it('makes one quarantine dead letter, with the count, for all a body at the limit holds that is not understood', async () => {
    const h = await startHarness({ storeUrl: await testStore.create() });
    try {
      const good = Array.from({ length: 10 }, (_, i) => created(`at-limit-${i}`));
      const junk = Array.from({ length: 990 }, (_, i) => (i % 2 === 0 ? { junk: i } : i));
      const response = await h.post([...good, ...junk], { 'x-correlation-id': 'at-the-limit' });
      expect(response.status).toBe(202);
      expect(await response.json()).toMatchObject({ accepted: 10, quarantined: 990 });
      await eventually(() => good.every((m) => h.sink.records.has(`customer/${(m.resource as { id: string }).id}`)), 'the ten customers synced');
      await eventually(async () => (await deadLetters(h)).length > 0, 'the quarantine dead letter');
      const letters = await deadLetters(h);
      expect(letters).toHaveLength(1);
      expect(letters[0]).toMatchObject({ kind: 'quarantine', correlationId: 'at-the-limit' });
      expect(letters[0]!.reason).toMatch(/^990 parts of the body not understood: 495 × \[\*\]: .*; 495 × \[\*\]: /);
      expect((letters[0]!.payload as { parts: unknown[] }).parts).toHaveLength(990);
    } finally {
      await h.stop();
    }
  });

  it('quarantines a stored row whose routing keeps failing after a bounded number of attempts, and routes the rows behind it', async () => {
    const url = await testStore.create();
    const [, poison] = await storeWith(url, async (store) => [
      await sealedRow(store, created('before-poison'), 'c-before'),
      await sealedRow(store, created('the-poison'), 'c-poison'),
      await sealedRow(store, created('after-poison'), 'c-after'),
    ]);
    let attempts = 0;
    const h = await startHarness({
      storeUrl: url,
      hooks: {
        onRouteRow(seq) {
          if (seq !== poison) return;
          attempts += 1;
          throw new Error('this body cannot be routed');
        },
      },
    });
    try {
      await eventually(() => h.sink.records.has('customer/before-poison') && h.sink.records.has('customer/after-poison'), 'the rows around the poison synced');
      await eventually(async () => (await deadLetters(h)).length === 1, 'the poison quarantined');
      const [letter] = await deadLetters(h);
      expect(letter).toMatchObject({ kind: 'quarantine', correlationId: 'c-poison' });
      expect(letter!.reason).toBe(`could not be routed (${MAX_HEAD_ATTEMPTS} attempts): this body cannot be routed`);
      // Kept, redacted: the notification is there, the e-mail is not.
      expect(JSON.stringify(letter!.payload)).toContain('the-poison');
      expect(JSON.stringify(letter!.payload)).not.toContain('the-poison@example.com');
      // Once in the batch that failed, then alone until quarantined.
      expect(attempts).toBe(MAX_HEAD_ATTEMPTS + 1);
      expect(h.sink.records.has('customer/the-poison')).toBe(false);
      expect(await pendingInbox(h.runtime.store)).toEqual([]);
      // Routing goes on as before.
      await h.post(created('later'));
      await eventually(() => h.sink.records.has('customer/later'), 'a later message synced');
    } finally {
      await h.stop();
    }
  });

  it('counts attempts across restarts: a row that stopped the process every time is quarantined, not retried forever', async () => {
    const url = await testStore.create();
    const [poison] = await storeWith(url, async (store) => [await sealedRow(store, created('kills-the-process'), 'c-kills'), await sealedRow(store, created('behind-it'), 'c-behind')]);
    // Each run "dies" routing the poison and is restarted: stopped as soon as it tried (a poll interval longer
    // than the run keeps it from trying again by itself). Its recorded attempts are what the next run finds.
    let runs = 0;
    let tried = 0;
    let h: Harness | undefined;
    try {
      for (; runs <= MAX_HEAD_ATTEMPTS && !h; runs += 1) {
        let failed = false;
        const run = await startHarness({
          storeUrl: url,
          engine: { pollIntervalMs: 60_000 },
          hooks: {
            onRouteRow(seq) {
              if (seq !== poison) return;
              failed = true;
              tried += 1;
              throw new Error('the process ended here');
            },
          },
        });
        await eventually(async () => failed || (await deadLetters(run)).length > 0, `run ${runs} tried the poison or quarantined it`).catch(async (error: unknown) => {
          await run.stop();
          throw error;
        });
        if (failed) await run.stop();
        else h = run;
      }
      // No run tried more than twice (its first batch, then the body alone), so the count carried over restarts.
      expect(h).toBeDefined();
      expect(runs).toBeGreaterThan(2);
      expect(runs).toBeLessThanOrEqual(MAX_HEAD_ATTEMPTS + 1);
      expect(tried).toBe(MAX_HEAD_ATTEMPTS);
      await eventually(() => h!.sink.records.has('customer/behind-it'), 'the row behind the poison synced');
      const letters = await deadLetters(h!);
      expect(letters).toHaveLength(1);
      expect(letters[0]!.correlationId).toBe('c-kills');
      expect(letters[0]!.reason).toBe(`could not be routed (${MAX_HEAD_ATTEMPTS} attempts): the process ended here`);
      expect(h!.sink.records.has('customer/kills-the-process')).toBe(false);
    } finally {
      await h?.stop();
    }
  });

  it('starts on a store holding a 100,000-element body an older version accepted and a poison row, and routes the good rows', async () => {
    const url = await testStore.create();
    const [, , poison] = await storeWith(url, async (store) => [
      await sealedRow(store, created('first-good'), 'c-first'),
      legacyRow(tinyElements(100_000), 100_000),
      await sealedRow(store, created('poisoned'), 'c-poisoned'),
      legacyRow(JSON.stringify([created('legacy-good-1'), created('legacy-good-2')]), 2),
      await sealedRow(store, created('last-good'), 'c-last'),
    ]);
    const h = await startHarness({
      storeUrl: url,
      hooks: {
        onRouteRow(seq) {
          if (seq === poison) throw new Error('poisoned row');
        },
      },
    });
    try {
      await eventually(
        () => ['first-good', 'legacy-good-1', 'legacy-good-2', 'last-good'].every((id) => h.sink.records.has(`customer/${id}`)),
        'every good row synced',
        60_000,
      );
      expect((await fetch(`${h.runtime.url}/healthz`)).status).toBe(200);
      const letters = await deadLetters(h);
      // The big body in slices of 1,000 items, one dead letter each, every element accounted for.
      const legacy = letters.filter((l) => l.correlationId === 'legacy-body');
      expect(legacy).toHaveLength(100);
      for (const letter of legacy) expect(letter.reason).toMatch(/^1000 parts of the body not understood: 1000 × \[\*\]: not a commercetools notification/);
      expect(letters.filter((l) => l.correlationId === 'c-poisoned').map((l) => l.reason)).toEqual([`could not be routed (${MAX_HEAD_ATTEMPTS} attempts): poisoned row`]);
      expect(await pendingInbox(h.runtime.store)).toEqual([]);
    } finally {
      await h.stop();
    }
  });

  it('`ctbridge start` (the engine thread and its memory bound) stays up on a stored 100,000-element body and syncs what follows', async () => {
    const url = await testStore.create();
    await storeWith(url, () => Promise.resolve([legacyRow(tinyElements(100_000), 100_000), legacyRow(JSON.stringify(created('after-the-bomb')), 1)]));
    const sink = await startSink();
    const dir = mkdtempSync(join(tmpdir(), 'ctbridge-bomb-'));
    const port = await freePort();
    const configPath = join(dir, 'ctbridge.yaml');
    writeConfig(configPath, {
      commercetools: { projectKey: 'p', authUrl: 'http://127.0.0.1:9/auth', apiUrl: 'http://127.0.0.1:9/api', clientId: 'id', clientSecret: 'secret' },
      server: { port, host: '127.0.0.1', ingest: { auth: { type: 'bearer', token: INGEST_TOKEN } }, adminToken: ADMIN_TOKEN },
      store: url,
      engine: { pollIntervalMs: 50 },
      destinations: [{ name: 'sink', type: 'http', url: `${sink.url}/records`, records: { customer: { fields: { email: 'email', firstName: 'firstName' } } } }],
    });
    const logFile = join(dir, 'ctbridge.log');
    const child = spawnCtbridge(configPath, logFile);
    let exited = false;
    void child.exited.then(() => (exited = true));
    try {
      await waitForReady(`http://127.0.0.1:${port}`, child);
      // Routed a slice of 1,000 at a time by an engine thread at the lowest CPU priority: on a busy machine, slowly.
      await eventually(() => exited || sink.records.has('customer/after-the-bomb'), `the message behind the big body synced (log: ${logFile})`, 170_000);
      expect(exited, `ctbridge exited (log: ${logFile})`).toBe(false);
    } finally {
      const exit = await child.kill('SIGTERM');
      await sink.close();
      expect(exit).toEqual({ code: 0, signal: null });
    }
  }, 180_000);

  it('`ctbridge ingest` feeds a long array as bodies within the limit', async () => {
    const url = await testStore.create();
    const dir = mkdtempSync(join(tmpdir(), 'ctbridge-cli-ingest-'));
    const configPath = join(dir, 'ctbridge.yaml');
    writeConfig(configPath, {
      commercetools: { projectKey: 'p', authUrl: 'http://127.0.0.1:9/auth', apiUrl: 'http://127.0.0.1:9/api', clientId: 'id', clientSecret: 'secret' },
      server: { ingest: { auth: { type: 'none' } } },
      store: url,
    });
    const file = join(dir, 'messages.json');
    writeFileSync(file, JSON.stringify(Array.from({ length: 2_500 }, (_, i) => created(`cli-${i}`))));
    const run = await new Promise<{ error: Error | null; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, ['bin/ctbridge.js', 'ingest', file, '--config', configPath], { cwd: join(import.meta.dirname, '..') }, (error, stdout, stderr) => resolve({ error, stdout, stderr })),
    );
    expect(run.error, run.stderr).toBeNull();
    expect(run.stdout).toMatch(/^accepted 2500 /);
    const store = openStore(url);
    try {
      expect((await pendingInbox(store)).map((row) => row.items)).toEqual([1000, 1000, 500]);
    } finally {
      await store.close();
    }
  });
});

describe.each(testStores)('message ids that are not well-formed Unicode on $name', (testStore) => {
  let h: Harness;
  afterAll(async () => {
    await h?.stop();
    await testStore.cleanup();
  });

  it('quarantines ids holding a lone surrogate before the acknowledgement: neither is lost, they never collide', async () => {
    h = await startHarness({ storeUrl: await testStore.create() });
    // As JSON text, exactly as a sender would write them.
    const first = JSON.stringify(created('surrogate-1')).replace(/"id":"[^"]+"/, '"id":"a\\ud800"');
    const second = JSON.stringify(created('surrogate-2')).replace(/"id":"[^"]+"/, '"id":"a\\udbff"');
    for (const [body, correlationId] of [[first, 'lone-1'], [second, 'lone-2']] as const) {
      const response = await h.post(body, { 'x-correlation-id': correlationId });
      expect(response.status).toBe(202);
      expect(await response.json()).toMatchObject({ accepted: 0, quarantined: 1 });
    }
    // In one body: one dead letter holding both.
    const both = await h.post(`[${first},${second}]`, { 'x-correlation-id': 'lone-both' });
    expect(await both.json()).toMatchObject({ accepted: 0, quarantined: 2 });
    // A resource id too.
    const resource = await h.post(JSON.stringify(created('fine')).replaceAll('"fine"', '"r\\udc00"'), { 'x-correlation-id': 'lone-resource' });
    expect(await resource.json()).toMatchObject({ accepted: 0, quarantined: 1 });

    await eventually(async () => (await deadLetters(h)).length === 4, 'four quarantine dead letters');
    const letters = new Map((await deadLetters(h)).map((l) => [l.correlationId, l]));
    expect(letters.get('lone-1')!.reason).toBe('Message id is not well-formed Unicode (it holds a lone surrogate)');
    expect(letters.get('lone-2')!.reason).toBe('Message id is not well-formed Unicode (it holds a lone surrogate)');
    expect(letters.get('lone-both')!.reason).toMatch(/^2 parts of the body not understood: 2 × \[\*\]: Message id is not well-formed Unicode/);
    expect(letters.get('lone-resource')!.reason).toMatch(/resource\.id is not well-formed Unicode/);
    expect(h.sink.applied).toEqual([]);
  });

  it('routes or quarantines every message it acknowledges, whatever its id (property)', async () => {
    h ??= await startHarness({ storeUrl: await testStore.create() });
    const accepted = new Set<string>();
    let run = 0;
    const id = fc.oneof(fc.string({ unit: 'binary', maxLength: 6 }), fc.string({ unit: 'grapheme', maxLength: 6 }), fc.uuid(), fc.string({ unit: 'binary-ascii', maxLength: 6 }));
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(id, { minLength: 1, maxLength: 6 }), async (ids) => {
        run += 1;
        const correlationId = `property-${run}`;
        const messages = ids.map((messageId, i) => created(`property-${run}-${i}`, { id: messageId }));
        const response = await h.post(messages, { 'x-correlation-id': correlationId });
        expect(response.status).toBe(202);
        const answer = (await response.json()) as { accepted: number; quarantined: number };
        expect(answer.accepted + answer.quarantined).toBe(ids.length);
        // What a store can keep as a key: non-empty, at most 256 characters, no NUL, well-formed.
        const keepable = ids.filter((messageId) => messageId.length > 0 && !messageId.includes('\u0000') && messageId.isWellFormed());
        expect(answer.accepted).toBe(keepable.length);
        const fresh = keepable.filter((messageId) => !accepted.has(messageId));
        for (const messageId of keepable) accepted.add(messageId);
        const delivered = () => new Set(h.sink.applied.filter((i) => i.kind === 'event').map((i) => i.body.idempotencyKey as string));
        await eventually(async () => fresh.every((messageId) => delivered().has(messageId)) && (answer.quarantined === 0 || (await deadLetters(h)).some((l) => l.correlationId === correlationId)), `run ${run} routed or quarantined`);
        if (answer.quarantined > 0) {
          const letter = (await deadLetters(h)).find((l) => l.correlationId === correlationId)!;
          const parts = answer.quarantined === 1 ? 1 : (letter.payload as { parts: unknown[] }).parts.length;
          expect(parts).toBe(answer.quarantined);
        }
      }),
      { numRuns: 40 },
    );
    // Every event delivered once: no two ids became one.
    const events = h.sink.applied.filter((i) => i.kind === 'event').map((i) => i.body.idempotencyKey as string);
    expect(new Set(events).size).toBe(events.length);
    for (const messageId of accepted) expect(events).toContain(messageId);
  });
});
