// Ingest authentication over HTTP (issue 11, items 8, 9 and 10), on both stores: a signed HMAC timestamp refuses
// old, future, missing and tampered timestamps with 401 problem+json; an OIDC token of another service account is
// refused; SNS messages are accepted only with a valid signature from a certificate on an SNS host (fetched once),
// and an SNS SubscriptionConfirmation is recorded only once verified. Refused requests store nothing.
import { createHmac, randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { mintJwt, oidcKey, selfSignedCertificate, SNS_CERT_URL, snsMessage, startCertificateServer } from './support/auth-fixtures.ts';
import { adminFetch, eventually, metricValue, startHarness, type Harness, type HarnessOptions } from './support/harness.ts';
import { testStores } from './support/stores.ts';

const PATH = '/v1/ingest/commercetools';

async function expectUnauthorized(response: Response): Promise<void> {
  expect(response.status).toBe(401);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(await response.json()).toMatchObject({ type: 'urn:ctbridge:problem:unauthorized', status: 401 });
}

describe.each(testStores)('ingest authentication over HTTP on $name', (testStore) => {
  const harnesses: Harness[] = [];
  const start = async (options: Omit<HarnessOptions, 'storeUrl'>) => {
    const h = await startHarness({ storeUrl: await testStore.create(), ...options });
    harnesses.push(h);
    return h;
  };
  afterEach(async () => {
    for (const h of harnesses.splice(0)) await h.stop();
  });
  afterAll(() => testStore.cleanup());

  it('hmac with a signed timestamp: within the tolerance 202; too old, in the future, missing or tampered 401', async () => {
    const secret = 'an-hmac-secret-for-timestamp-tests';
    // A clock of the test's own, hours away from the real one: only the injected clock can accept these.
    const now = Date.parse('2026-03-01T12:00:00Z');
    const nowS = Math.floor(now / 1000);
    const h = await start({ server: { ingest: { auth: { type: 'hmac', secret, timestampHeader: 'X-Ctbridge-Timestamp', toleranceSeconds: 60 } } }, ingestAuth: { now: () => now } });
    const send = (id: string, signedAt: number, sentAt: number | undefined) => {
      const body = JSON.stringify(h.commercetools.upsertCustomer(id, { email: `${id}@example.com` }));
      const signature = createHmac('sha256', secret).update(`${signedAt}.${body}`).digest('hex');
      return fetch(`${h.runtime.url}${PATH}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-ctbridge-signature': `sha256=${signature}`, ...(sentAt !== undefined && { 'x-ctbridge-timestamp': String(sentAt) }) },
        body,
      });
    };
    await expectUnauthorized(await send('too-old', nowS - 61, nowS - 61));
    await expectUnauthorized(await send('in-the-future', nowS + 61, nowS + 61));
    await expectUnauthorized(await send('missing-timestamp', nowS, undefined));
    await expectUnauthorized(await send('tampered-timestamp', nowS - 3600, nowS));
    expect((await send('in-time', nowS - 30, nowS - 30)).status).toBe(202);
    await eventually(() => h.sink.records.has('customer/in-time'), 'the message in time synced');
    expect([...h.sink.records.keys()]).toEqual(['customer/in-time']);
    // The refusals are on /metrics, by route: a push source whose secret rotated shows here.
    expect(await metricValue(h, 'ctbridge_http_refusals_total', { route: PATH, status: '401' })).toBe(4);
  });

  it('oidc with the service account configured: a token of another identity is refused', async () => {
    const key = oidcKey();
    const audience = 'https://ctbridge.example.com/v1/ingest/commercetools';
    const email = 'commercetools-push@my-project.iam.gserviceaccount.com';
    const h = await start({
      server: { ingest: { auth: { type: 'oidc', jwksUrl: 'https://www.googleapis.com/oauth2/v3/certs', audience, email } } },
      ingestAuth: { fetchJwks: () => Promise.resolve({ keys: [key.jwk] }) },
    });
    const send = (id: string, identity: string) => {
      const nowS = Math.floor(Date.now() / 1000);
      const token = mintJwt(key, { iss: 'https://accounts.google.com', aud: audience, email: identity, email_verified: true, iat: nowS, exp: nowS + 600 });
      return fetch(`${h.runtime.url}${PATH}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify(h.commercetools.upsertCustomer(id, { email: `${id}@example.com` })) });
    };
    await expectUnauthorized(await send('other-identity', 'someone@gmail.com'));
    expect((await send('push-identity', email)).status).toBe(202);
    await eventually(() => h.sink.records.has('customer/push-identity'), 'the service account\'s message synced');
    expect(h.sink.records.has('customer/other-identity')).toBe(false);
  });

  describe('sns', () => {
    const { pem, privateKey } = selfSignedCertificate({ commonName: 'sns.amazonaws.com' });
    let certificates: Awaited<ReturnType<typeof startCertificateServer>>;
    beforeAll(async () => {
      certificates = await startCertificateServer(pem);
    });
    afterAll(() => certificates.close());

    const startSns = () => {
      certificates.fetched.length = 0;
      return start({ server: { ingest: { auth: { type: 'sns' } } }, ingestAuth: { fetchCertificate: (url) => certificates.fetchCertificate(url) } });
    };
    const send = (h: Harness, message: Record<string, string>) =>
      fetch(`${h.runtime.url}${PATH}`, { method: 'POST', headers: { 'content-type': 'text/plain; charset=UTF-8', 'x-amz-sns-message-type': message.Type! }, body: JSON.stringify(message) });

    it('accepts valid SignatureVersion 1 and 2 notifications (certificate fetched once), refuses tampered ones and foreign certificate URLs', async () => {
      const h = await startSns();
      const notification = (id: string, options: Parameters<typeof snsMessage>[1] = {}) => snsMessage(privateKey, { ...options, message: JSON.stringify(h.commercetools.upsertCustomer(id, { email: `${id}@example.com` })) });
      expect((await send(h, notification('sns-v1', { version: '1' }))).status).toBe(202);
      expect((await send(h, notification('sns-v2', { version: '2' }))).status).toBe(202);
      expect(certificates.fetched).toEqual([SNS_CERT_URL]);

      const tampered = notification('sns-tampered');
      tampered.Message = JSON.stringify(h.commercetools.upsertCustomer('sns-forged', { email: 'forged@example.com' }));
      await expectUnauthorized(await send(h, tampered));
      await expectUnauthorized(await send(h, notification('sns-foreign', { certUrl: 'https://attacker.example.com/SimpleNotificationService-1.pem' })));
      await expectUnauthorized(await send(h, notification('sns-http', { certUrl: 'http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem' })));
      expect(certificates.fetched).toEqual([SNS_CERT_URL]);

      await eventually(() => h.sink.records.has('customer/sns-v1') && h.sink.records.has('customer/sns-v2'), 'the verified notifications synced');
      expect([...h.sink.records.keys()].sort()).toEqual(['customer/sns-v1', 'customer/sns-v2']);
    });

    it('records a SubscriptionConfirmation only once its signature is verified', async () => {
      const h = await startSns();
      const confirmation = snsMessage(privateKey, { type: 'SubscriptionConfirmation', message: 'You have chosen to subscribe to the topic.', messageId: randomUUID() });
      await expectUnauthorized(await send(h, { ...confirmation, SubscribeURL: 'https://attacker.example.com/?Action=ConfirmSubscription' }));
      await expectUnauthorized(await send(h, snsMessage(privateKey, { type: 'SubscriptionConfirmation', certUrl: 'https://attacker.example.com/cert.pem' })));

      const response = await send(h, confirmation);
      expect(response.status).toBe(202);
      expect(await response.json()).toMatchObject({ accepted: 0, notices: ['sns-subscription-confirmation'] });
      await eventually(async () => ((await (await adminFetch(h, '/v1/status')).json()) as { notices: number }).notices === 1, 'the verified notice in the status');
    });
  });
});
