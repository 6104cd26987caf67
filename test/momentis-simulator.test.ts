// The Momentis simulator against its contract (spec/momentis/momentis.openapi.yaml): every answer it gives is one
// the contract declares, with the body the contract describes; what breaks the contract is refused with 400; auth
// by OAuth2 client credentials (scopes checked) or API key; interactions once each in occurrence order;
// Idempotency-Key replays; the ledger's rules; signed webhooks with retries; injected faults.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { momentisContract } from '../src/sandbox/momentis/contract.ts';
import { startMomentisSimulator, type MomentisSimulator } from '../src/sandbox/momentis/simulator.ts';
import { checkMomentisSignature } from '../src/server/inbound-auth.ts';

const API_KEY = 'mk_test_0123456789abcdef';
const CLIENT = { clientId: 'ctbridge', clientSecret: 'secret-0123456789' };
let simulator: MomentisSimulator | undefined;
const closers: Array<() => Promise<void>> = [];

afterEach(async () => {
  await simulator?.close();
  simulator = undefined;
  for (const close of closers.splice(0)) await close();
});

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${simulator!.url}${path}`, { method, headers: { 'x-api-key': API_KEY, ...(body !== undefined && { 'content-type': 'application/json' }), ...headers }, ...(body !== undefined && { body: JSON.stringify(body) }) });
  return { status: response.status, headers: response.headers, json: (await response.json()) as Record<string, unknown> };
}

/** Every answer the simulator gave is declared by the contract for its operation and status, body included. */
function expectAnswersFollowContract() {
  const contract = momentisContract();
  for (const request of simulator!.requests) {
    const route = contract.route(request.path.split('?')[0]!);
    if (!route || !contract.has(request.method, route.template)) continue;
    const verdict = contract.response(request.method, route.template, request.status, request.answer);
    expect(verdict, `${request.method} ${request.path} ${request.status}`).toEqual({ ok: true });
  }
}

const accrue = (orderId: string, centAmount: number, currencyCode = 'EUR') => ({ type: 'accrue', sourceId: `msg-${orderId}`, orderId, amount: { currencyCode, centAmount, fractionDigits: 2 }, store: 'eu', occurredAt: '2026-12-01T10:00:00.000Z' });

describe('Momentis simulator', () => {
  it('upserts members, answering within the contract', async () => {
    simulator = await startMomentisSimulator({ apiKeys: [API_KEY] });
    const created = await call('PUT', '/v1/members/c-1', { externalId: 'c-1', email: 'tok_abc', locale: 'de-DE', currency: 'EUR', store: 'eu' });
    expect(created.status).toBe(201);
    const updated = await call('PUT', '/v1/members/c-1', { externalId: 'c-1', email: 'tok_abc', locale: 'en-GB' });
    expect(updated.status).toBe(200);
    expect((updated.json.member as Record<string, unknown>).locale).toBe('en-GB');
    const read = await call('GET', '/v1/members/c-1');
    expect((read.json.member as { loyalty: { balance: number } }).loyalty.balance).toBe(0);
    expect((await call('GET', '/v1/members/nobody')).status).toBe(404);
    expectAnswersFollowContract();
  });

  it('refuses what breaks the contract with a 400 problem naming it', async () => {
    simulator = await startMomentisSimulator({ apiKeys: [API_KEY] });
    const unknownField = await call('PUT', '/v1/members/c-1', { externalId: 'c-1', shoeSize: 44 });
    expect(unknownField.status).toBe(400);
    expect(String(unknownField.json.detail)).toContain('unevaluated properties');
    const badType = await call('POST', '/v1/members/c-1/interactions', { interactions: [{ id: 'm1', type: 'order.teleported', occurredAt: '2026-12-01T10:00:00Z', context: {}, data: {} }] });
    expect(badType.status).toBe(400);
    const noKey = await call('POST', '/v1/members/c-1/transactions', accrue('o-1', 1000));
    expect(noKey.status).toBe(400);
    expect(noKey.json.title).toBe('Missing Idempotency-Key');
    expect(simulator.ledger).toHaveLength(0);
    expectAnswersFollowContract();
  });

  it('authenticates by OAuth2 client credentials with scopes, or API key', async () => {
    simulator = await startMomentisSimulator({ apiKeys: [API_KEY], clients: [CLIENT, { clientId: 'timeline-only', clientSecret: 'secret-abcdefghij', scopes: ['interactions:write'] }] });
    const token = async (clientId: string, clientSecret: string, scope?: string) => {
      const response = await fetch(`${simulator!.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret, ...(scope && { scope }) }) });
      return { status: response.status, json: (await response.json()) as Record<string, unknown> };
    };
    expect((await token(CLIENT.clientId, 'wrong')).status).toBe(401);
    expect((await token('timeline-only', 'secret-abcdefghij', 'loyalty:write')).json.error).toBe('invalid_scope');
    const narrow = await token('timeline-only', 'secret-abcdefghij');
    const bearer = { authorization: `Bearer ${String(narrow.json.access_token)}`, 'x-api-key': '' };
    const noKeyHeaders = (extra: Record<string, string>) => Object.fromEntries(Object.entries(extra).filter(([, v]) => v !== ''));
    const refused = await fetch(`${simulator.url}/v1/members/c-1/transactions`, { method: 'POST', headers: noKeyHeaders({ ...bearer, 'content-type': 'application/json', 'idempotency-key': 'k1' }), body: JSON.stringify(accrue('o-1', 1000)) });
    expect(refused.status).toBe(403);
    const full = await token(CLIENT.clientId, CLIENT.clientSecret);
    const allowed = await fetch(`${simulator.url}/v1/members/c-1/transactions`, { method: 'POST', headers: { authorization: `Bearer ${String(full.json.access_token)}`, 'content-type': 'application/json', 'idempotency-key': 'k1' }, body: JSON.stringify(accrue('o-1', 1000)) });
    expect(allowed.status).toBe(201);
    const anonymous = await fetch(`${simulator.url}/v1/members/c-1`, { method: 'GET' });
    expect(anonymous.status).toBe(401);
    expect((await call('GET', '/v1/members/c-1', undefined, { 'x-api-key': 'wrong-key' })).status).toBe(401);
    expectAnswersFollowContract();
  });

  it('keeps each interaction once, in occurrence order, whatever order they arrive in', async () => {
    simulator = await startMomentisSimulator({ apiKeys: [API_KEY] });
    const interaction = (id: string, minute: number, type = 'order.state_changed') => ({ id, type, occurredAt: `2026-12-01T10:${String(minute).padStart(2, '0')}:00.000Z`, context: { store: 'eu', currency: 'EUR' }, data: {} });
    const first = await call('POST', '/v1/members/c-1/interactions', { interactions: [interaction('m3', 3), interaction('m1', 1)] });
    expect(first.status).toBe(202);
    expect(first.json).toEqual({ accepted: 2, duplicates: 0 });
    const second = await call('POST', '/v1/members/c-1/interactions', { interactions: [interaction('m1', 1), interaction('m2', 2)] });
    expect(second.json).toEqual({ accepted: 1, duplicates: 1 });
    expect(simulator.timeline('c-1').map((i) => i.id)).toEqual(['m1', 'm2', 'm3']);
    const listed = await call('GET', '/v1/members/c-1/interactions');
    expect((listed.json.interactions as Array<{ id: string }>).map((i) => i.id)).toEqual(['m1', 'm2', 'm3']);
    expectAnswersFollowContract();
  });

  it('books a transaction once per Idempotency-Key, refuses the key with another body, caps reversals at what the order earned', async () => {
    simulator = await startMomentisSimulator({ apiKeys: [API_KEY] });
    const first = await call('POST', '/v1/members/c-1/transactions', accrue('o-1', 12_345), { 'idempotency-key': 'msg-1' });
    expect(first.status).toBe(201);
    expect(first.json.balance).toBe(123);
    const again = await call('POST', '/v1/members/c-1/transactions', accrue('o-1', 12_345), { 'idempotency-key': 'msg-1' });
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);
    const otherBody = await call('POST', '/v1/members/c-1/transactions', accrue('o-1', 999), { 'idempotency-key': 'msg-1' });
    expect(otherBody.status).toBe(422);
    const reverse = await call('POST', '/v1/members/c-1/transactions', { type: 'reverse', sourceId: 'msg-2', orderId: 'o-1', amount: { currencyCode: 'EUR', centAmount: 50_000, fractionDigits: 2 }, reason: 'refund', occurredAt: '2026-12-02T10:00:00Z' }, { 'idempotency-key': 'msg-2' });
    expect(reverse.json.balance).toBe(0);
    const unknownCurrency = await call('POST', '/v1/members/c-1/transactions', accrue('o-2', 1000, 'JPY'), { 'idempotency-key': 'msg-3' });
    expect(unknownCurrency.status).toBe(422);
    expect(simulator.ledger.map((entry) => [entry.type, entry.points])).toEqual([
      ['accrue', 123],
      ['reverse', -123],
    ]);
    expectAnswersFollowContract();
  });

  it('sends signed webhooks with the loyalty snapshot, versions rising, retried after a failed delivery', async () => {
    const received: Array<{ body: string; signature: string | undefined }> = [];
    let failFirst = 1;
    const receiver = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (failFirst > 0) {
          failFirst -= 1;
          res.writeHead(503).end();
          return;
        }
        received.push({ body: Buffer.concat(chunks).toString('utf8'), signature: req.headers['momentis-signature'] as string | undefined });
        res.writeHead(200).end('{}');
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => receiver.close(() => resolve())));
    const secret = 'whsec_0123456789abcdef';
    simulator = await startMomentisSimulator({ apiKeys: [API_KEY], webhook: { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, secret, retryDelayMs: 5 } });
    await call('POST', '/v1/members/c-1/transactions', accrue('o-1', 60_000), { 'idempotency-key': 'msg-1' });
    await simulator.webhooksSettled();
    const bodies = received.map((r) => JSON.parse(r.body) as { type: string; loyalty: { version: number; balance: number; tier: string; rewards: unknown[] } });
    expect(bodies.map((b) => b.type)).toEqual(['member.balance_changed', 'member.reward_issued', 'member.tier_changed']);
    expect(bodies.every((b) => b.loyalty.version === 1 && b.loyalty.balance === 600 && b.loyalty.tier === 'silver' && b.loyalty.rewards.length === 1)).toBe(true);
    expect(simulator.webhooks[0]!.statuses).toEqual([503, 200]);
    for (const { body, signature } of received) {
      expect(momentisContract().webhook(JSON.parse(body))).toEqual({ ok: true });
      expect(checkMomentisSignature(signature, Buffer.from(body), secret, 300, Date.now())).toEqual({ ok: true });
    }
  });

  it('injects 429 with Retry-After and 5xx faults', async () => {
    simulator = await startMomentisSimulator({ apiKeys: [API_KEY] });
    simulator.faults = [{ kind: 'status', status: 429, retryAfter: 2 }, { kind: 'status', status: 503 }];
    const limited = await call('PUT', '/v1/members/c-1', { externalId: 'c-1' });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('2');
    expect((await call('PUT', '/v1/members/c-1', { externalId: 'c-1' })).status).toBe(503);
    expect((await call('PUT', '/v1/members/c-1', { externalId: 'c-1' })).status).toBe(201);
    expectAnswersFollowContract();
  });
});
