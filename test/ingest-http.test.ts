// Bad input and every accepted shape, over real HTTP (issue 2, section 10): the official commercetools examples and
// each transport envelope are accepted; handshakes are answered; malformed, truncated, oversized and
// unauthenticated bodies get the right problem+json; unrecognisable ones are quarantined; fuzzed bodies never
// produce a 5xx or lose an acknowledged notification; the request's correlation id reaches the destination.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizeBody } from '../src/ingest/normalize.ts';
import { createSealer } from '../src/pii/sealed.ts';
import { loadSealKey } from '../src/pii/secrets.ts';
import { pendingInbox, pendingInboxItems, readInboxBody } from '../src/store/inbox.ts';
import { testStores } from './support/stores.ts';
import { adminFetch, eventually, INGEST_TOKEN, startHarness, type Harness } from './support/harness.ts';

const REFERENCE = fileURLToPath(new URL('../spec/commercetools', import.meta.url));
const BODY_LIMIT = 64 * 1024;

const readJson = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

/** The official examples, each as the body commercetools would deliver (payloadNotIncluded goes into a Message). */
function officialExamples(): Array<{ name: string; body: Record<string, unknown> }> {
  const dir = join(REFERENCE, 'subscription');
  const examples = readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .map((file) => {
      const content = readJson(join(dir, file));
      if (file !== 'payload-not-included.example.json') return { name: file, body: content };
      return {
        name: file,
        body: {
          notificationType: 'Message',
          projectKey: 'test-project',
          id: 'c0ffee00-0000-4000-8000-000000000001',
          version: 1,
          sequenceNumber: 7,
          resource: { typeId: 'product', id: 'b32d1013-cd25-4cb4-95ab-99c494531d73' },
          resourceVersion: 7,
          resourceUserProvidedIdentifiers: {},
          payloadNotIncluded: content,
          createdAt: '2022-06-17T08:41:58.066Z',
          lastModifiedAt: '2022-06-17T08:41:58.066Z',
        },
      };
    });
  examples.push({ name: 'resources/message.example.json', body: readJson(join(REFERENCE, 'resources', 'message.example.json')) });
  return examples;
}

/** Dedupe keys of the notifications in a body, as ingest derives them. */
function dedupeKeys(body: unknown, headers: Record<string, string> = {}): string[] {
  return normalizeBody(body, headers).flatMap((item) => (item.kind === 'notification' ? [item.notification.dedupeKey] : []));
}

/** Dedupe keys of the notifications in bodies waiting in the inbox, read the way the router reads them. */
async function inboxKeys(h: Harness): Promise<string[]> {
  const rows = await pendingInbox(h.runtime.store);
  const sealer = createSealer(await loadSealKey(h.runtime.store.db, undefined));
  return rows.flatMap((row) => readInboxBody(row, sealer).items.flatMap((item) => (item.kind === 'notification' ? [item.notification.dedupeKey] : [])));
}

/** True when every key was durably stored: waiting in the inbox or already routed (remembered as seen). */
async function stored(h: Harness, keys: string[]): Promise<boolean> {
  if (keys.length === 0) return true;
  const db = h.runtime.store.db;
  const found = new Set(await inboxKeys(h));
  for (let start = 0; start < keys.length; start += 200) {
    const chunk = keys.slice(start, start + 200);
    for (const row of await db.selectFrom('seen').select('dedupe_key').where('dedupe_key', 'in', chunk).execute()) found.add(row.dedupe_key);
  }
  return keys.every((key) => found.has(key));
}

/** Notifications stored so far: waiting in the inbox or routed. */
async function storedCount(h: Harness): Promise<number> {
  const seen = await h.runtime.store.db.selectFrom('seen').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return (await inboxKeys(h)).length + Number(seen.n);
}

type Letter = { kind: string; reason: string; correlationId: string; payload: unknown };

/** The dead letter with this correlation id, once the router has quarantined what the body held. */
async function quarantined(h: Harness, correlationId: string): Promise<Letter> {
  let letter: Letter | undefined;
  await eventually(async () => {
    const letters = ((await (await adminFetch(h, '/v1/dead-letters?limit=1000')).json()) as { items: Letter[] }).items;
    letter = letters.find((l) => l.correlationId === correlationId);
    return letter !== undefined;
  }, `the dead letter of ${correlationId}`);
  return letter!;
}

async function expectProblem(response: Response, status: number, kind: string): Promise<Record<string, unknown>> {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const problem = (await response.json()) as Record<string, unknown>;
  expect(problem).toMatchObject({ type: `urn:ctbridge:problem:${kind}`, status });
  expect(typeof problem.detail).toBe('string');
  return problem;
}

const raw = (h: Harness, body: string | Uint8Array | ReadableStream<Uint8Array>, headers: Record<string, string> = {}) =>
  fetch(`${h.runtime.url}/v1/ingest/commercetools`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST_TOKEN}`, ...headers },
    body,
    ...(body instanceof ReadableStream && { duplex: 'half' }),
  });

describe.each(testStores)('ingest over HTTP on $name', (testStore) => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ storeUrl: await testStore.create(), server: { bodyLimit: BODY_LIMIT } });
  });
  afterAll(async () => {
    await h?.stop();
    await testStore.cleanup();
  });

  it('accepts every official commercetools example payload', async () => {
    const examples = officialExamples();
    expect(examples.length).toBeGreaterThanOrEqual(8);
    for (const { name, body } of examples) {
      const response = await h.post(body);
      expect(response.status, name).toBe(202);
      expect(await response.json(), name).toMatchObject({ accepted: 1, quarantined: 0 });
      expect(await stored(h, dedupeKeys(body)), `${name} stored`).toBe(true);
    }
    // All of them at once, as one array body, too.
    const all = await h.post(examples.map((e) => e.body));
    expect(all.status).toBe(202);
    expect(await all.json()).toMatchObject({ accepted: examples.length, quarantined: 0 });
  });

  it('accepts each transport envelope and syncs what it carries', async () => {
    const message = (id: string) => h.commercetools.upsertCustomer(id, { email: `${id}@example.com`, firstName: id });
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');
    const envelopes: Array<{ name: string; body: unknown; headers?: Record<string, string>; customers: string[] }> = [
      {
        name: 'CloudEvents',
        customers: ['env-ce'],
        body: { specversion: '1.0', id: randomUUID(), source: '/test-project/customers', type: 'com.commercetools.customer.message.CustomerCreated', time: '2026-01-01T00:00:00Z', datacontenttype: 'application/json', data: message('env-ce') },
      },
      {
        name: 'Pub/Sub push',
        customers: ['env-pubsub'],
        body: { message: { data: encode(message('env-pubsub')), messageId: '136969346945', publishTime: '2026-01-01T00:00:00Z', attributes: {} }, subscription: 'projects/p/subscriptions/s' },
      },
      {
        name: 'EventBridge',
        customers: ['env-eventbridge'],
        body: { version: '0', id: randomUUID(), 'detail-type': 'CustomerCreated', source: 'aws.partner/commercetools.com/test-project/ctbridge', account: '123456789012', time: '2026-01-01T00:00:00Z', region: 'eu-west-1', resources: [], detail: message('env-eventbridge') },
      },
      {
        name: 'SNS Notification',
        customers: ['env-sns'],
        headers: { 'x-amz-sns-message-type': 'Notification' },
        body: {
          Type: 'Notification',
          MessageId: randomUUID(),
          TopicArn: 'arn:aws:sns:eu-west-1:123456789012:commercetools',
          Message: JSON.stringify(message('env-sns')),
          Timestamp: '2026-01-01T00:00:00.000Z',
          SignatureVersion: '1',
          Signature: 'c2lnbmF0dXJl',
          SigningCertURL: 'https://sns.eu-west-1.amazonaws.com/cert.pem',
          UnsubscribeURL: 'https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe',
        },
      },
      {
        name: 'Event Grid array',
        customers: ['env-eg-1', 'env-eg-2'],
        body: ['env-eg-1', 'env-eg-2'].map((id) => ({
          id: randomUUID(),
          topic: '/subscriptions/x/resourceGroups/y/providers/Microsoft.EventGrid/topics/commercetools',
          subject: `customer/${id}`,
          eventType: 'CustomerCreated',
          eventTime: '2026-01-01T00:00:00Z',
          data: message(id),
          dataVersion: '1',
          metadataVersion: '1',
        })),
      },
    ];
    for (const envelope of envelopes) {
      const response = await h.post(envelope.body, envelope.headers);
      expect(response.status, envelope.name).toBe(202);
      expect(await response.json(), envelope.name).toMatchObject({ accepted: envelope.customers.length, quarantined: 0 });
    }
    for (const envelope of envelopes) {
      for (const id of envelope.customers) {
        await eventually(() => h.sink.records.get(`customer/${id}`)?.email === `${id}@example.com`, `${envelope.name}: ${id} at the sink`);
      }
    }
  });

  it('records an SNS SubscriptionConfirmation and reports it in the status', async () => {
    const response = await h.post(
      {
        Type: 'SubscriptionConfirmation',
        MessageId: randomUUID(),
        Token: '2336412f37fb687f5d51e6e2425c464de',
        TopicArn: 'arn:aws:sns:eu-west-1:123456789012:commercetools',
        Message: 'You have chosen to subscribe to the topic arn:aws:sns:eu-west-1:123456789012:commercetools.',
        SubscribeURL: 'https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=2336412f37fb687f5d51e6e2425c464de',
        Timestamp: '2026-01-01T00:00:00.000Z',
        SignatureVersion: '1',
        Signature: 'c2lnbmF0dXJl',
        SigningCertURL: 'https://sns.eu-west-1.amazonaws.com/cert.pem',
      },
      { 'x-amz-sns-message-type': 'SubscriptionConfirmation' },
    );
    expect(response.status).toBe(202);
    expect(await response.json()).toMatchObject({ accepted: 0, notices: ['sns-subscription-confirmation'] });
    // The router records the notice when it takes the body from the inbox.
    await eventually(async () => ((await (await adminFetch(h, '/v1/status')).json()) as { notices: number }).notices === 1, 'the notice in the status');
  });

  it('answers the Event Grid handshakes and ignores the subscription test notification', async () => {
    const validation = await h.post([
      {
        id: randomUUID(),
        topic: '/subscriptions/x/resourceGroups/y/providers/Microsoft.EventGrid/topics/commercetools',
        subject: '',
        data: { validationCode: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6', validationUrl: 'https://rp-eastus2.eventgrid.azure.net/validate' },
        eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent',
        eventTime: '2026-01-01T00:00:00Z',
        metadataVersion: '1',
        dataVersion: '2',
      },
    ]);
    expect(validation.status).toBe(200);
    expect(await validation.json()).toEqual({ validationResponse: '512d38b6-c7b8-40c8-89fe-f46f9e9622b6' });

    const options = await fetch(`${h.runtime.url}/v1/ingest/commercetools`, { method: 'OPTIONS', headers: { 'WebHook-Request-Origin': 'eventgrid.azure.net' } });
    expect(options.status).toBe(200);
    expect(options.headers.get('webhook-allowed-origin')).toBe('eventgrid.azure.net');

    const before = await storedCount(h);
    const test = await h.post({ notificationType: 'ResourceCreated', projectKey: 'test-project', resource: { typeId: 'subscription', id: randomUUID() }, version: 1, modifiedAt: '2026-01-01T00:00:00Z' });
    expect(test.status).toBe(202);
    expect(await test.json()).toMatchObject({ accepted: 0, ignored: 1, quarantined: 0 });
    expect(await storedCount(h)).toBe(before);
  });

  it('rejects malformed and truncated JSON with 400 and stores nothing', async () => {
    const before = await storedCount(h);
    const problem = await expectProblem(await raw(h, '{"notificationType": "Message",'), 400, 'malformed-json');
    expect(problem.detail).toMatch(/not valid JSON/);
    await expectProblem(await raw(h, ''), 400, 'empty-body');
    await expectProblem(await raw(h, 'notificationType=Message'), 400, 'malformed-json');

    const text = JSON.stringify(h.commercetools.upsertCustomer('truncated', { email: 'cut@example.com', firstName: 'Cut' }));
    for (const cut of [1, 2, 10, Math.floor(text.length / 2), text.length - 2, text.length - 1]) {
      await expectProblem(await raw(h, text.slice(0, cut)), 400, 'malformed-json');
    }
    expect(await storedCount(h)).toBe(before);
  });

  it('rejects bodies over the configured limit with 413, with or without a content-length', async () => {
    const before = await storedCount(h);
    const big = JSON.stringify({ ...h.commercetools.upsertCustomer('oversized', { firstName: 'Big' }), padding: 'x'.repeat(BODY_LIMIT) });
    await expectProblem(await raw(h, big), 413, 'payload-too-large');
    const bytes = new TextEncoder().encode(big);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let start = 0; start < bytes.length; start += 8192) controller.enqueue(bytes.slice(start, start + 8192));
        controller.close();
      },
    });
    await expectProblem(await raw(h, stream), 413, 'payload-too-large');
    expect(await storedCount(h)).toBe(before);
    expect((await fetch(`${h.runtime.url}/healthz`)).status).toBe(200);
  });

  it('rejects wrong or missing authentication with 401 and stores nothing', async () => {
    const before = await storedCount(h);
    const body = JSON.stringify(h.commercetools.upsertCustomer('intruder', { email: 'intruder@example.com', firstName: 'Mallory' }));
    const attempts: Array<Record<string, string>> = [
      { authorization: 'Bearer not-the-token-0123456789' },
      { authorization: `Bearer ${INGEST_TOKEN}x` },
      { authorization: `Basic ${Buffer.from(`user:${INGEST_TOKEN}`).toString('base64')}` },
      { authorization: '' },
    ];
    for (const headers of attempts) await expectProblem(await raw(h, body, headers), 401, 'unauthorized');
    await expectProblem(
      await fetch(`${h.runtime.url}/v1/ingest/commercetools`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }),
      401,
      'unauthorized',
    );
    // Unauthenticated garbage is refused before it is even parsed.
    await expectProblem(await raw(h, '{not json', { authorization: 'Bearer nope' }), 401, 'unauthorized');
    expect(await storedCount(h)).toBe(before);
    const letters = (await (await adminFetch(h, '/v1/dead-letters')).json()) as { items: unknown[] };
    expect(JSON.stringify(letters)).not.toContain('Mallory');
    expect(h.sink.records.has('customer/intruder')).toBe(false);
  });

  it('acknowledges well-formed but unrecognisable bodies and quarantines them with the reason', async () => {
    const cases: Array<{ body: unknown; reason: RegExp }> = [
      { body: { hello: 'world', email: 'someone@example.com' }, reason: /not a commercetools notification/ },
      { body: { notificationType: 'Bogus', id: 'x' }, reason: /unknown notificationType "Bogus"/ },
      { body: { notificationType: 'Message', resource: { typeId: 'customer', id: 'q' }, type: 'CustomerCreated' }, reason: /Message has no id/ },
      { body: { message: { data: 'not base64 json!', messageId: '1' } }, reason: /Pub\/Sub push message\.data/ },
      { body: 42, reason: /expected a JSON object or array/ },
      // The reason quotes the text that is not JSON, NUL character included: it must still be storable.
      { body: { specversion: '1.0', id: 'ce-1', source: '/p', type: 't', data: '\u0000not json' }, reason: /CloudEvent data is a string that is not JSON/ },
    ];
    for (const { body, reason } of cases) {
      const correlationId = `quarantine-${randomUUID()}`;
      const response = await h.post(body, { 'x-correlation-id': correlationId });
      expect(response.status).toBe(202);
      expect(await response.json()).toMatchObject({ accepted: 0, quarantined: 1 });
      const letter = await quarantined(h, correlationId);
      expect(letter.kind).toBe('quarantine');
      expect(letter.reason).toMatch(reason);
      expect(JSON.stringify(letter.payload)).not.toContain('someone@example.com');
    }
  });

  it('quarantines notifications whose identifiers no store can keep, and keeps routing what follows', async () => {
    const cases: Array<{ body: unknown; reason: RegExp }> = [
      { body: { ...h.commercetools.upsertCustomer('poison-1', { firstName: 'P' }), id: 'message\u0000id' }, reason: /id contains a NUL character/ },
      { body: h.commercetools.upsertCustomer('poison\u0000customer', { firstName: 'P' }), reason: /resource\.id contains a NUL character/ },
      { body: { ...h.commercetools.upsertCustomer('poison-2', { firstName: 'P' }), id: 'x'.repeat(5000) }, reason: /id is longer than/ },
      { body: h.commercetools.upsertCustomer(`poison-${'y'.repeat(5000)}`, { firstName: 'P' }), reason: /resource\.id is longer than/ },
      // Well-formed JSON, but nested far deeper than any commercetools payload (and than JSON.stringify copes with).
      // (Sent as text: JSON.stringify itself cannot write it.)
      { body: `${JSON.stringify(h.commercetools.upsertCustomer('poison-3', { firstName: 'P' })).slice(0, -1)},"custom":${'['.repeat(15_000)}${']'.repeat(15_000)}}`, reason: /nested deeper than/ },
    ];
    for (const { body, reason } of cases) {
      const correlationId = `poison-${randomUUID()}`;
      const response = await h.post(body, { 'x-correlation-id': correlationId });
      expect(response.status).toBe(202);
      expect(await response.json()).toMatchObject({ accepted: 0, quarantined: 1 });
      expect((await quarantined(h, correlationId)).reason).toMatch(reason);
    }
    // Nothing is stuck: the next notification goes all the way to the destination.
    await h.post(h.commercetools.upsertCustomer('after-poison', { email: 'after@example.com', firstName: 'After' }));
    await eventually(() => h.sink.records.has('customer/after-poison'), 'a later notification synced');
  });

  it('sends the request X-Correlation-Id to the destination with the resulting delivery', async () => {
    const response = await h.post(h.commercetools.upsertCustomer('correlated', { email: 'corr@example.com', firstName: 'Cora' }), { 'x-correlation-id': 'req-4711-abc' });
    expect(response.status).toBe(202);
    await eventually(() => h.sink.records.has('customer/correlated'), 'the record at the sink');
    await eventually(() => h.sink.applied.some((i) => i.kind === 'event' && (i.body.resource as { id?: string } | undefined)?.id === 'correlated'), 'the event at the sink');
    const record = h.sink.applied.find((i) => i.kind === 'record' && i.body.id === 'correlated')!;
    const event = h.sink.applied.find((i) => i.kind === 'event' && (i.body.resource as { id?: string } | undefined)?.id === 'correlated')!;
    expect(record.correlationId).toBe('req-4711-abc');
    expect(event.correlationId).toBe('req-4711-abc');
    const request = h.sink.requests.find((r) => r.path === '/records' && (r.body as { id?: string }).id === 'correlated')!;
    expect(request.headers['x-correlation-id']).toBe('req-4711-abc');
  });

  it('never answers fuzzed bodies with a 5xx, and keeps every notification it acknowledged', async () => {
    const seeds: unknown[] = [
      ...officialExamples().map((e) => e.body),
      h.commercetools.upsertCustomer('fuzz-seed', { email: 'seed@example.com', firstName: 'Seed', addresses: [{ city: 'Berlin' }] }),
      { message: { data: Buffer.from(JSON.stringify(h.commercetools.upsertCustomer('fuzz-seed', { firstName: 'Seed2' }))).toString('base64'), messageId: '1' }, subscription: 's' },
      { 'detail-type': 'Message', detail: h.commercetools.upsertCustomer('fuzz-seed', { firstName: 'Seed3' }) },
      [{ eventType: 'CustomerFirstNameSet', eventTime: '2026-01-01T00:00:00Z', dataVersion: '1', data: h.commercetools.upsertCustomer('fuzz-seed', { firstName: 'Seed4' }) }],
    ];
    const anyJson = fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' });
    // 'replace' puts a random JSON value somewhere; the poison values are strings no store keeps in an index.
    const poison = fc.constantFrom('a\u0000b', 'z'.repeat(3000), '\u0000');
    const mutation = fc.record({ at: fc.nat(), op: fc.constantFrom('replace' as const, 'delete' as const, 'wrap' as const, 'stringify' as const), value: fc.oneof({ weight: 4, arbitrary: anyJson }, { weight: 1, arbitrary: poison }) });
    const mutated = fc.record({ seed: fc.constantFrom(...seeds), mutations: fc.array(mutation, { minLength: 1, maxLength: 4 }) }).map(({ seed, mutations }) => {
      const copy = structuredClone<unknown>(seed);
      for (const m of mutations) mutate(copy, m);
      return JSON.stringify(copy);
    });
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
      fc.json({ maxDepth: 4 }),
      anyJson.map((v) => JSON.stringify(v) ?? 'null'),
      mutated,
      mutated,
      mutated,
    );

    let accepted = 0;
    const expectedKeys: string[] = [];
    await fc.assert(
      fc.asyncProperty(body, async (text) => {
        const response = await raw(h, typeof text === 'string' ? text : new Uint8Array(text));
        expect(response.status, `status for ${String(text).slice(0, 200)}`).toBeLessThan(500);
        const answer = (await response.json()) as Record<string, unknown>;
        if (response.status >= 300) {
          expect(String(answer.type)).toMatch(/^urn:ctbridge:problem:/);
          return;
        }
        if (typeof answer.accepted !== 'number') return; // the Event Grid handshake
        accepted += answer.accepted;
        const keys = dedupeKeys(JSON.parse(typeof text === 'string' ? text : text.toString('utf8')));
        expect(keys).toHaveLength(answer.accepted);
        expectedKeys.push(...keys);
      }),
      { numRuns: 150 },
    );
    expect((await fetch(`${h.runtime.url}/healthz`)).status).toBe(200);
    expect(accepted).toBe(expectedKeys.length);
    expect(await stored(h, expectedKeys)).toBe(true);
    // Whatever was accepted is also routed in the end: nothing stays stuck in the inbox, and the pipeline still
    // carries a notification all the way to the destination.
    await eventually(async () => (await pendingInboxItems(h.runtime.store)) === 0, 'the inbox drained');
    await h.post(h.commercetools.upsertCustomer('after-fuzz', { email: 'after-fuzz@example.com', firstName: 'After' }));
    await eventually(() => h.sink.records.has('customer/after-fuzz'), 'a notification synced after the fuzzing');
  });
});

describe.each(testStores)('ingest under overload on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('answers 503 with Retry-After while the in-flight bound is taken, stores nothing it refused, and recovers', async () => {
    const h = await startHarness({ storeUrl: await testStore.create(), server: { maxInFlightBytes: 64 * 1024 } });
    try {
      // A body without Content-Length counts as the largest allowed (1 MiB), more than the bound: it is admitted
      // alone and holds the bound for as long as it is being received.
      let finish!: () => void;
      const slowBody = JSON.stringify(h.commercetools.upsertCustomer('slow', { email: 'slow@example.com' }));
      const stream = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(new TextEncoder().encode(slowBody.slice(0, 10)));
          await new Promise<void>((resolve) => (finish = resolve));
          controller.enqueue(new TextEncoder().encode(slowBody.slice(10)));
          controller.close();
        },
      });
      const slow = raw(h, stream);
      await eventually(() => finish !== undefined, 'the slow request started');

      const refusedMessage = h.commercetools.upsertCustomer('refused', { email: 'refused@example.com' });
      let refused: Response | undefined;
      await eventually(async () => {
        refused = await h.post(refusedMessage);
        return refused.status === 503;
      }, 'a request refused while the bound is taken');
      expect(refused!.headers.get('retry-after')).toBe('1');
      await expectProblem(refused!, 503, 'overloaded');

      finish();
      expect((await slow).status).toBe(202);
      expect(await stored(h, dedupeKeys(refusedMessage))).toBe(false);
      const retried = await h.post(refusedMessage);
      expect(retried.status).toBe(202);
      expect(await stored(h, [...dedupeKeys(JSON.parse(slowBody)), ...dedupeKeys(refusedMessage)])).toBe(true);
      await eventually(() => h.sink.records.has('customer/refused') && h.sink.records.has('customer/slow'), 'both synced');
    } finally {
      await h.stop();
    }
  });
});

/** Applies one random change to a JSON document in place, at the `at`-th value of a depth-first walk. */
function mutate(document: unknown, m: { at: number; op: 'replace' | 'delete' | 'wrap' | 'stringify'; value: unknown }): void {
  const slots: Array<[Record<string, unknown> | unknown[], string | number]> = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) {
      node.forEach((child, index) => {
        slots.push([node, index]);
        walk(child);
      });
    } else if (node !== null && typeof node === 'object') {
      for (const [key, child] of Object.entries(node)) {
        slots.push([node as Record<string, unknown>, key]);
        walk(child);
      }
    }
  };
  walk(document);
  if (slots.length === 0) return;
  const [parent, key] = slots[m.at % slots.length]!;
  const container = parent as Record<string | number, unknown>;
  if (m.op === 'replace') container[key] = m.value;
  else if (m.op === 'wrap') container[key] = [container[key]];
  else if (m.op === 'stringify') container[key] = JSON.stringify(container[key]) ?? null;
  else if (Array.isArray(parent)) parent.splice(key as number, 1);
  else delete container[key];
}
