// Agent actions (src/actions) end to end: ctbridge's HTTP API in front, the commercetools emulator behind, the
// store on both SQLite and PostgreSQL. Every test asserts what ended up in commercetools (the payment's
// transactions, the line items' states, the order's state and version), what the answer says, and what the audit
// log holds.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Order, Payment } from '@commercetools/platform-sdk';
import fc from 'fast-check';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ActionsService, type ActionCall, type Answer } from '../src/actions/service.ts';
import { findByKey } from '../src/actions/requests.ts';
import { generateApiKey } from '../src/server/api-clients.ts';
import { auditOf } from '../src/store/audit-log.ts';
import { createOrder, prepareShop, type ActionShop, type OrderOptions } from './support/actions-fixtures.ts';
import { mintJwt, oidcKey } from './support/auth-fixtures.ts';
import { useEmulator } from './support/emulator.ts';
import { startTestRuntime, type TestRuntime } from './support/harness.ts';
import { testStores } from './support/stores.ts';

const keys = { agent: generateApiKey(), agent2: generateApiKey(), lead: generateApiKey(), supervisor: generateApiKey(), viewer: generateApiKey() };
const jwtKey = oidcKey('actions-key');
const ISSUER = 'https://id.example.test/';
const AUDIENCE = 'ctbridge-actions';

for (const testStore of testStores) {
  describe(`agent actions (${testStore.name})`, () => {
    let shop: ActionShop;
    const env = useEmulator({
      prepare: async (ct) => {
        shop = await prepareShop(ct.api);
      },
    });
    let started: TestRuntime;
    let clock = Date.parse('2026-03-01T10:00:00Z');
    let failAfterWrite = 0;
    let storeUrl: string;

    beforeAll(async () => {
      const emulator = env.emulator;
      const limits = { EUR: '50.00', GBP: '50.00', USD: '50.00' };
      started = await startTestRuntime({
        commercetools: { projectKey: emulator.projectKey, authUrl: emulator.authUrl, apiUrl: emulator.apiUrl, clientId: 'read-only-client', clientSecret: 'not-used-for-actions' },
        storeUrl: (storeUrl = await testStore.create()),
        destinations: [],
        blocks: {
          api: {
            clients: [
              { name: 'agent-ann', keyHash: keys.agent.keyHash, role: 'agent' },
              { name: 'agent-bob', keyHash: keys.agent2.keyHash, role: 'agent' },
              { name: 'lead-lea', keyHash: keys.lead.keyHash, role: 'lead' },
              { name: 'super-sam', keyHash: keys.supervisor.keyHash, role: 'supervisor' },
              { name: 'viewer-vic', keyHash: keys.viewer.keyHash, role: 'viewer' },
            ],
            roles: {
              agent: { actions: { allow: ['refund', 'cancel-items'], refundLimits: limits } },
              lead: { actions: { allow: ['refund', 'cancel-items'], refundLimits: { EUR: '100.00' }, approve: true } },
              supervisor: { actions: { allow: ['refund', 'cancel-items', 'change-state'], approve: true } },
              viewer: { description: 'reads only' },
            },
            jwt: { jwksUrl: 'https://id.example.test/jwks', issuer: ISSUER, audience: AUDIENCE, roleClaim: 'ctbridge_role' },
          },
          actions: {
            commercetools: { clientId: emulator.clientId, clientSecret: emulator.clientSecret, scopes: [`manage_orders:${emulator.projectKey}`, `manage_payments:${emulator.projectKey}`, `view_states:${emulator.projectKey}`] },
            lineItemStates: { cancelled: 'cancelled', shipped: ['shipped'] },
            leaseSeconds: 30,
          },
        },
        listen: false,
        work: false,
        now: () => clock,
        apiAuth: { fetchJwks: () => Promise.resolve({ keys: [jwtKey.jwk] }), now: () => clock },
        actionsAfterWrite: () => {
          if (failAfterWrite > 0) {
            failAfterWrite -= 1;
            throw new Error('the process died after writing to commercetools');
          }
        },
      });
    }, 60_000);

    afterAll(async () => {
      await started?.stop();
      await testStore.cleanup();
    });

    let keyCounter = 0;
    const newKey = () => `key-${testStore.name}-${(keyCounter += 1)}`;

    async function call(path: string, body: unknown, options: { as?: keyof typeof keys | { bearer: string }; key?: string | null; ifMatch?: string; query?: string } = {}) {
      const as = options.as ?? 'agent';
      const headers: Record<string, string> = { 'content-type': 'application/json', ...(typeof as === 'string' ? { 'x-api-key': keys[as].key } : { authorization: `Bearer ${as.bearer}` }) };
      if (options.key !== null) headers['idempotency-key'] = options.key ?? newKey();
      if (options.ifMatch) headers['if-match'] = options.ifMatch;
      const response = await started.runtime.app.inject({ method: path.endsWith('/approve') || path.endsWith('/reject') || body !== undefined ? 'POST' : 'GET', url: `${path}${options.query ?? ''}`, headers, ...(body !== undefined && { payload: typeof body === 'string' ? body : JSON.stringify(body) }) });
      return { status: response.statusCode, body: response.json<Record<string, unknown>>(), headers: response.headers };
    }

    const order = async (id: string): Promise<Order> => (await env.api.orders().withId({ ID: id }).get().execute()).body;
    const payment = async (id: string): Promise<Payment> => (await env.api.payments().withId({ ID: id }).get().execute()).body;
    const refunds = async (id: string) => (await payment(id)).transactions.filter((t) => t.type === 'Refund');
    const audit = async (orderId: string) => (await auditOf(started.runtime.store.db, orderId)).map((row) => ({ action: row.action, outcome: row.outcome, detail: JSON.parse(row.detail ?? '{}') as Record<string, unknown> }));
    const fresh = (options?: OrderOptions) => createOrder(env.api, shop, options);

    it('refunds an amount as a Refund transaction on the payment with the charge, and audits who, what and why', async () => {
      const { order: placed, payment: paid } = await fresh();
      const key = newKey();
      const answer = await call(`/v1/actions/orders/${placed.id}/refunds`, { amount: { currencyCode: 'EUR', amount: '12.50' }, reason: 'late delivery, customer jane@example.com' }, { key });
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ kind: 'refund', status: 'done', orderId: placed.id, refund: { amount: { currencyCode: 'EUR', amount: '12.50', centAmount: 1250 }, paymentId: paid.id, transactionState: 'Initial' } });
      expect((await refunds(paid.id)).map((t) => [t.amount.centAmount, t.state])).toEqual([[1250, 'Initial']]);
      const entries = await audit(placed.id);
      expect(entries).toMatchObject([{ action: 'action.refund', outcome: 'done', detail: { actor: 'agent-ann', role: 'agent', idempotencyKey: key, amount: { currencyCode: 'EUR', amount: '12.50', centAmount: 1250 }, orderVersionBefore: placed.version, orderVersionAfter: placed.version } }]);
      // The reason is kept, personal data in it is not.
      expect(entries[0]!.detail.reason).toContain('late delivery');
      expect(JSON.stringify(entries)).not.toContain('jane@example.com');
    });

    it('refunds line items with the tax share from their taxed prices', async () => {
      const { order: placed, payment: paid } = await fresh({ lines: [{ sku: 'SHIRT-1', quantity: 4, unitCents: 1190 }] });
      const line = placed.lineItems[0]!;
      expect(line.taxedPrice).toBeDefined();
      const answer = await call(`/v1/actions/orders/${placed.id}/refunds`, { lineItems: [{ lineItemId: line.id, quantity: 1 }], reason: 'damaged' }, { as: 'supervisor' });
      expect(answer.status).toBe(200);
      const gross = Math.round(line.taxedPrice!.totalGross.centAmount / 4);
      const net = Math.round(line.taxedPrice!.totalNet.centAmount / 4);
      expect(answer.body.refund).toMatchObject({ amount: { centAmount: gross }, parts: [{ what: `line item ${line.id}`, quantity: 1, gross: { centAmount: gross }, net: { centAmount: net }, tax: { centAmount: gross - net } }] });
      expect((await refunds(paid.id)).map((t) => t.amount.centAmount)).toEqual([gross]);
    });

    describe('safeguards refuse with their rule and write nothing', () => {
      const refused = async (path: (orderId: string) => string, body: unknown, rule: string, status: number, options: OrderOptions = {}, as: keyof typeof keys = 'supervisor') => {
        const { order: placed, payment: paid } = await fresh(options);
        const answer = await call(path(placed.id), body, { as });
        expect(answer.status).toBe(status);
        expect(answer.headers['content-type']).toContain('application/problem+json');
        expect(answer.body).toMatchObject({ type: `urn:ctbridge:problem:action:${rule}`, rule, status });
        expect((await order(placed.id)).version).toBe(placed.version);
        expect((await payment(paid.id)).version).toBe(paid.version);
        expect(await audit(placed.id)).toMatchObject([{ outcome: 'refused', detail: { rule } }]);
      };
      const refundPath = (id: string) => `/v1/actions/orders/${id}/refunds`;
      const cancelPath = (id: string) => `/v1/actions/orders/${id}/cancel-items`;
      const statePath = (id: string) => `/v1/actions/orders/${id}/state`;

      it('a refund above what was charged', () => refused(refundPath, { amount: { currencyCode: 'EUR', amount: '119.01' }, reason: 'r' }, 'refund-exceeds-charge', 409));
      it('a refund on a payment without a successful charge', () => refused(refundPath, { amount: { currencyCode: 'EUR', amount: '1.00' }, reason: 'r' }, 'no-successful-charge', 409, { transactions: ['authorization', 'failed-charge'] }));
      it('a refund in another currency', () => refused(refundPath, { amount: { currencyCode: 'GBP', amount: '1.00' }, reason: 'r' }, 'currency-mismatch', 422));
      it("a refund with more fraction digits than the order's currency", () => refused(refundPath, { amount: { currencyCode: 'EUR', amount: '1.005' }, reason: 'r' }, 'amount-precision', 422));
      it('a cancellation of shipped quantities', async () => {
        const { order: placed } = await fresh({ lines: [{ sku: 'SHIRT-1', quantity: 3, unitCents: 1000, states: [{ key: 'ordered', quantity: 1 }, { key: 'shipped', quantity: 2 }] }] });
        const answer = await call(cancelPath(placed.id), { lineItems: [{ lineItemId: placed.lineItems[0]!.id, quantity: 2 }], reason: 'r' }, { as: 'supervisor' });
        expect(answer.body).toMatchObject({ rule: 'already-shipped', status: 409 });
        expect((await order(placed.id)).version).toBe(placed.version);
      });
      it('a cancellation of already cancelled quantities', async () => {
        const { order: placed } = await fresh({ lines: [{ sku: 'SHIRT-1', quantity: 2, unitCents: 1000, states: [{ key: 'ordered', quantity: 1 }, { key: 'cancelled', quantity: 1 }] }] });
        const answer = await call(cancelPath(placed.id), { lineItems: [{ lineItemId: placed.lineItems[0]!.id, quantity: 2 }], reason: 'r' }, { as: 'supervisor' });
        expect(answer.body).toMatchObject({ rule: 'already-cancelled', status: 409 });
        expect((await order(placed.id)).version).toBe(placed.version);
      });
      it('a state change out of a final state', () => refused(statePath, { orderState: 'Open', reason: 'r' }, 'final-state', 409, { orderState: 'Complete' }));
      it('Complete while the payment is open', () => refused(statePath, { orderState: 'Complete', reason: 'r' }, 'open-payment', 409, { paymentState: 'Pending' }));
      it('a workflow state change out of a final State', () => refused(statePath, { state: 'picking', reason: 'r' }, 'final-state', 409, { workflowState: 'closed' }));
      it('a workflow state change the State has no transition for', () => refused(statePath, { state: 'closed', reason: 'r' }, 'transition-not-allowed', 409, { workflowState: 'picking' }));
      it('an action the role does not allow', () => refused(statePath, { orderState: 'Confirmed', reason: 'r' }, 'role-not-allowed', 403, {}, 'agent'));
      it('a role without an actions section', () => refused(refundPath, { amount: { currencyCode: 'EUR', amount: '1.00' }, reason: 'r' }, 'role-not-allowed', 403, {}, 'viewer'));
    });

    it('cancels quantities into the cancelled LineItemState and refunds them', async () => {
      const { order: placed, payment: paid } = await fresh({ lines: [{ sku: 'SHIRT-1', quantity: 3, unitCents: 1000 }, { sku: 'CAP-1', quantity: 1, unitCents: 500 }] });
      const [shirt, cap] = placed.lineItems;
      const answer = await call(`/v1/actions/orders/${placed.id}/cancel-items`, { lineItems: [{ lineItemId: shirt!.id, quantity: 2 }, { lineItemId: cap!.id, quantity: 1 }], refund: true, reason: 'out of stock' });
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ status: 'done', cancelled: [{ lineItemId: shirt!.id, quantity: 2 }, { lineItemId: cap!.id, quantity: 1 }], refund: { amount: { centAmount: 2500 } } });
      const after = await order(placed.id);
      const statesOf = (id: string) => Object.fromEntries(after.lineItems.find((l) => l.id === id)!.state.map((s) => [s.state.id, s.quantity]));
      expect(statesOf(shirt!.id)).toEqual({ [shop.states.ordered.id]: 1, [shop.states.cancelled.id]: 2 });
      expect(statesOf(cap!.id)).toEqual({ [shop.states.cancelled.id]: 1 });
      expect((await refunds(paid.id)).map((t) => t.amount.centAmount)).toEqual([2500]);
      // Cancelling the same items again is refused: they are cancelled.
      const again = await call(`/v1/actions/orders/${placed.id}/cancel-items`, { lineItems: [{ lineItemId: cap!.id, quantity: 1 }], reason: 'again' });
      expect(again.body).toMatchObject({ rule: 'already-cancelled' });
    });

    it('changes the orderState and the workflow state along allowed transitions', async () => {
      const { order: placed } = await fresh({ workflowState: 'picking' });
      const answer = await call(`/v1/actions/orders/${placed.id}/state`, { orderState: 'Confirmed', state: 'packed', reason: 'checked by phone' }, { as: 'supervisor', ifMatch: `"${placed.version}"` });
      expect(answer.status).toBe(200);
      const after = await order(placed.id);
      expect(after.orderState).toBe('Confirmed');
      expect(after.state?.id).toBe(shop.states.packed.id);
      expect(answer.body).toMatchObject({ orderState: 'Confirmed', state: shop.states.packed.id, orderVersion: after.version });
    });

    it('answers 412 when the order moved past If-Match, and writes nothing', async () => {
      const { order: placed } = await fresh();
      const answer = await call(`/v1/actions/orders/${placed.id}/state`, { orderState: 'Confirmed', reason: 'r' }, { as: 'supervisor', ifMatch: String(placed.version - 1) });
      expect(answer.status).toBe(412);
      expect(answer.body).toMatchObject({ rule: 'order-version-moved' });
      expect((await order(placed.id)).orderState).toBe('Open');
    });

    it('dry-run lists the checks and the exact update actions, and writes nothing', async () => {
      const { order: placed, payment: paid } = await fresh();
      const answer = await call(`/v1/actions/orders/${placed.id}/cancel-items`, { lineItems: [{ lineItemId: placed.lineItems[0]!.id, quantity: 1 }], refund: true, reason: 'r' }, { query: '?dryRun=true' });
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({
        dryRun: true,
        needsApproval: false,
        orderVersion: placed.version,
        writes: [
          { resource: 'order', id: placed.id, version: placed.version, actions: [{ action: 'transitionLineItemState', lineItemId: placed.lineItems[0]!.id, quantity: 1, fromState: { typeId: 'state', id: shop.states.ordered.id }, toState: { typeId: 'state', id: shop.states.cancelled.id } }] },
          { resource: 'payment', id: paid.id, version: paid.version, actions: [{ action: 'addTransaction', transaction: { type: 'Refund', amount: { currencyCode: 'EUR', centAmount: 2975 }, state: 'Initial' } }] },
        ],
      });
      expect(answer.body.checks).toEqual(expect.arrayContaining(['not-shipped', 'refund-within-charge']));
      expect((await order(placed.id)).version).toBe(placed.version);
      expect((await payment(paid.id)).version).toBe(paid.version);
      expect(await audit(placed.id)).toMatchObject([{ outcome: 'dry-run' }]);
    });

    describe('idempotency', () => {
      it('gives the same answer again for the same key and body, and refunds once', async () => {
        const { order: placed, payment: paid } = await fresh();
        const body = { amount: { currencyCode: 'EUR', amount: '5.00' }, reason: 'goodwill' };
        const key = newKey();
        const first = await call(`/v1/actions/orders/${placed.id}/refunds`, body, { key });
        const second = await call(`/v1/actions/orders/${placed.id}/refunds`, body, { key });
        expect(second.status).toBe(first.status);
        expect(second.body).toEqual(first.body);
        expect(second.headers['idempotent-replayed']).toBe('true');
        expect(await refunds(paid.id)).toHaveLength(1);
      });

      it('refuses the same key with another body (422) and writes nothing more', async () => {
        const { order: placed, payment: paid } = await fresh();
        const key = newKey();
        await call(`/v1/actions/orders/${placed.id}/refunds`, { amount: { currencyCode: 'EUR', amount: '5.00' }, reason: 'goodwill' }, { key });
        const other = await call(`/v1/actions/orders/${placed.id}/refunds`, { amount: { currencyCode: 'EUR', amount: '6.00' }, reason: 'goodwill' }, { key });
        expect(other.status).toBe(422);
        expect(other.body).toMatchObject({ rule: 'idempotency-key-reused' });
        expect(await refunds(paid.id)).toHaveLength(1);
      });

      it('requires the key', async () => {
        const { order: placed } = await fresh();
        const answer = await call(`/v1/actions/orders/${placed.id}/refunds`, { amount: { currencyCode: 'EUR', amount: '5.00' }, reason: 'r' }, { key: null });
        expect(answer.status).toBe(400);
        expect(answer.body).toMatchObject({ rule: 'idempotency-key-required' });
      });

      it('refunds once when the first call died after writing: the retry finds the write', async () => {
        const { order: placed, payment: paid } = await fresh();
        const body = { amount: { currencyCode: 'EUR', amount: '7.00' }, reason: 'goodwill' };
        const key = newKey();
        failAfterWrite = 1;
        const died = await call(`/v1/actions/orders/${placed.id}/refunds`, body, { key });
        expect(died.status).toBe(503);
        expect(await refunds(paid.id)).toHaveLength(1);
        // While the dead call's lease runs, the key is held.
        const early = await call(`/v1/actions/orders/${placed.id}/refunds`, body, { key });
        expect(early.body).toMatchObject({ rule: 'idempotency-in-progress' });
        clock += 31_000;
        const retried = await call(`/v1/actions/orders/${placed.id}/refunds`, body, { key });
        expect(retried.status).toBe(200);
        expect(retried.body).toMatchObject({ status: 'done', refund: { amount: { centAmount: 700 } } });
        expect((await refunds(paid.id)).map((t) => t.amount.centAmount)).toEqual([700]);
        const again = await call(`/v1/actions/orders/${placed.id}/refunds`, body, { key });
        expect(again.body).toEqual(retried.body);
        expect((await audit(placed.id)).map((e) => e.outcome)).toEqual(['failed', 'done']);
      });
    });

    describe('calls whose process died mid-call', () => {
      type Resource = 'order' | 'payment';
      /**
       * Another ctbridge on the same store whose process dies at a commercetools write — before it (the intent is
       * committed, nothing written) or after it (written, the outcome never committed) — as a crash leaves it: the
       * call never answers, its row stays in progress, and nothing renews its lease any more. `resume` lets a
       * process that only stalled carry on (its lease may have been taken over meanwhile).
       */
      function dyingProcess(at: { when: 'before' | 'after'; resource: Resource }) {
        let reached!: () => void;
        const crashed = new Promise<void>((resolve) => (reached = resolve));
        let resume!: () => void;
        const stalled = new Promise<void>((resolve) => (resume = resolve));
        const hook = (write: { resource: Resource }) => {
          if (write.resource !== at.resource) return;
          reached();
          return stalled;
        };
        const service = new ActionsService({ db: started.runtime.store.db, commercetools: env.ct, config: started.config.actions!, logger: pino({ level: 'silent' }), now: () => clock, ...(at.when === 'before' ? { beforeWrite: hook } : { afterWrite: hook }) });
        let answer: Promise<Answer> | undefined;
        return {
          service,
          /** Starts the call and returns once the process is dead at the write. */
          async dieDuring(run: (dying: ActionsService) => Promise<Answer>) {
            answer = run(service);
            await crashed;
            service.close();
          },
          /** A stalled process that comes back: the rest of its call runs. */
          async resume() {
            resume();
            return answer!;
          },
        };
      }
      const caller = (client: string, role: string) => ({ client, role, grants: started.config.api.roles[role]! });
      const refundCall = (orderId: string, key: string, body: ActionCall['body']): ActionCall => ({ kind: 'refund', orderId, body, caller: caller('agent-ann', 'agent'), idempotencyKey: key, dryRun: false, correlationId: `corr-${key}` });
      const outcomes = async (orderId: string) => (await audit(orderId)).map((e) => (typeof e.detail.recoveredBy === 'string' ? `${e.outcome}:${e.detail.recoveredBy}` : e.outcome));
      const expire = () => (clock += 31_000);

      it('settles a refund whose process died after writing: the sweeper finds the write, and a retry gets the answer it would have had', async () => {
        const { order: placed, payment: paid } = await fresh();
        const body = { amount: { currencyCode: 'EUR', amount: '9.00' }, reason: 'goodwill' };
        const key = newKey();
        const dying = dyingProcess({ when: 'after', resource: 'payment' });
        await dying.dieDuring((service) => service.perform(refundCall(placed.id, key, body)));
        expect((await refunds(paid.id)).map((t) => t.amount.centAmount)).toEqual([900]);
        expect(await findByKey(started.runtime.store.db, 'agent-ann', key)).toMatchObject({ status: 'in-progress' });
        // Within its lease the call may still be running: the sweeper leaves it, a retry is told to wait.
        expect((await started.runtime.actionsSweeper!.tick()).map((o) => o.id)).not.toContain((await findByKey(started.runtime.store.db, 'agent-ann', key))!.id);
        expect((await call(`/v1/actions/orders/${placed.id}/refunds`, body, { key })).body).toMatchObject({ rule: 'idempotency-in-progress' });
        expire();
        const swept = await started.runtime.actionsSweeper!.tick();
        const row = await findByKey(started.runtime.store.db, 'agent-ann', key);
        expect(swept).toContainEqual({ id: row!.id, outcome: 'done' });
        expect(row).toMatchObject({ status: 'done', leaseUntil: null });
        const retried = await call(`/v1/actions/orders/${placed.id}/refunds`, body, { key });
        expect(retried.status).toBe(200);
        expect(retried.headers['idempotent-replayed']).toBe('true');
        const transaction = (await refunds(paid.id))[0]!;
        expect(retried.body).toMatchObject({ id: row!.id, status: 'done', refund: { amount: { centAmount: 900 }, paymentId: paid.id, transactionId: transaction.id, transactionState: 'Initial' } });
        expect((await refunds(paid.id)).map((t) => t.amount.centAmount)).toEqual([900]);
        expect(await outcomes(placed.id)).toEqual(['done:sweeper']);
      });

      it('gives the key back when the process died before its write reached commercetools, and the retry refunds once', async () => {
        const { order: placed, payment: paid } = await fresh();
        const body = { amount: { currencyCode: 'EUR', amount: '4.00' }, reason: 'goodwill' };
        const key = newKey();
        const dying = dyingProcess({ when: 'before', resource: 'payment' });
        await dying.dieDuring((service) => service.perform(refundCall(placed.id, key, body)));
        const row = await findByKey(started.runtime.store.db, 'agent-ann', key);
        expect(row).toMatchObject({ status: 'in-progress', intent: { refund: { centAmount: 400 } } });
        expire();
        expect(await started.runtime.actionsSweeper!.tick()).toContainEqual({ id: row!.id, outcome: 'released' });
        expect(await findByKey(started.runtime.store.db, 'agent-ann', key)).toBeUndefined();
        expect(await refunds(paid.id)).toHaveLength(0);
        const retried = await call(`/v1/actions/orders/${placed.id}/refunds`, body, { key });
        expect(retried.status).toBe(200);
        expect((await refunds(paid.id)).map((t) => t.amount.centAmount)).toEqual([400]);
        const entries = await audit(placed.id);
        expect(entries.map((e) => e.outcome)).toEqual(['failed', 'done']);
        expect(entries[0]!.detail).toMatchObject({ abandoned: true, recoveredBy: 'sweeper', idempotencyKey: key, detail: 'the call died; none of its writes reached commercetools' });
      });

      it('a retry after the lease finishes a call that died before writing, and refunds once', async () => {
        const { order: placed, payment: paid } = await fresh();
        const body = { amount: { currencyCode: 'EUR', amount: '3.00' }, reason: 'goodwill' };
        const key = newKey();
        const dying = dyingProcess({ when: 'before', resource: 'payment' });
        await dying.dieDuring((service) => service.perform(refundCall(placed.id, key, body)));
        expire();
        const retried = await call(`/v1/actions/orders/${placed.id}/refunds`, body, { key });
        expect(retried.status).toBe(200);
        expect((await refunds(paid.id)).map((t) => t.amount.centAmount)).toEqual([300]);
        expect(await started.runtime.actionsSweeper!.tick()).not.toContainEqual(expect.objectContaining({ id: retried.body.id }));
        expect(await outcomes(placed.id)).toEqual(['done']);
      });

      it('finishes the refund of a cancellation whose process died between the two writes', async () => {
        const { order: placed, payment: paid } = await fresh({ lines: [{ sku: 'SHIRT-1', quantity: 3, unitCents: 1000 }] });
        const line = placed.lineItems[0]!;
        const key = newKey();
        const dying = dyingProcess({ when: 'before', resource: 'payment' });
        const cancel: ActionCall = { kind: 'cancel-items', orderId: placed.id, body: { lineItems: [{ lineItemId: line.id, quantity: 2 }], refund: true, reason: 'out of stock' }, caller: caller('agent-ann', 'agent'), idempotencyKey: key, dryRun: false, correlationId: 'corr-cancel' };
        await dying.dieDuring((service) => service.perform(cancel));
        const cancelledAfterCrash = await order(placed.id);
        expect(cancelledAfterCrash.version).toBeGreaterThan(placed.version);
        expect(await refunds(paid.id)).toHaveLength(0);
        expire();
        const row = await findByKey(started.runtime.store.db, 'agent-ann', key);
        expect(await started.runtime.actionsSweeper!.tick()).toContainEqual({ id: row!.id, outcome: 'done' });
        expect((await refunds(paid.id)).map((t) => t.amount.centAmount)).toEqual([2000]);
        const after = await order(placed.id);
        // The items were cancelled once: the sweeper wrote the refund alone.
        expect(after.version).toBe(cancelledAfterCrash.version);
        expect(after.lineItems[0]!.state).toEqual(expect.arrayContaining([{ quantity: 2, state: { typeId: 'state', id: shop.states.cancelled.id } }]));
        expect((await findByKey(started.runtime.store.db, 'agent-ann', key))!.answer).toMatchObject({ status: 'done', cancelled: [{ lineItemId: line.id, quantity: 2 }], refund: { amount: { centAmount: 2000 } } });
        expect(await outcomes(placed.id)).toEqual(['done:sweeper']);
      });

      it('settles an approval whose process died after the refund was written: approved by its approver, once', async () => {
        const { order: placed, payment: paid } = await fresh();
        const body = { amount: { currencyCode: 'EUR', amount: '70.00' }, reason: 'broken' };
        const key = newKey();
        const asked = await call(`/v1/actions/orders/${placed.id}/refunds`, body, { key });
        expect(asked.status).toBe(202);
        const id = asked.body.id as string;
        const dying = dyingProcess({ when: 'after', resource: 'payment' });
        await dying.dieDuring((service) => service.decide(id, caller('super-sam', 'supervisor'), 'approve', 'corr-approve'));
        expect((await refunds(paid.id)).map((t) => t.amount.centAmount)).toEqual([7000]);
        // While its lease runs: the approval is under way; the requester's retry gets its first answer again.
        expect((await call(`/v1/actions/${id}/approve`, undefined, { as: 'supervisor' })).body).toMatchObject({ rule: 'not-pending', action: { status: 'in-progress' } });
        expect((await call(`/v1/actions/orders/${placed.id}/refunds`, body, { key })).body).toEqual(asked.body);
        expire();
        expect(await started.runtime.actionsSweeper!.tick()).toContainEqual({ id, outcome: 'done' });
        expect((await call(`/v1/actions/${id}`, undefined, { as: 'agent' })).body).toMatchObject({ id, status: 'done', decidedBy: 'super-sam', result: { refund: { amount: { centAmount: 7000 } } } });
        expect((await refunds(paid.id)).map((t) => t.amount.centAmount)).toEqual([7000]);
        expect((await call(`/v1/actions/orders/${placed.id}/refunds`, body, { key })).body).toEqual(asked.body);
        const entries = await audit(placed.id);
        expect(entries.map((e) => e.outcome)).toEqual(['pending', 'approved']);
        expect(entries[1]!.detail).toMatchObject({ approver: 'super-sam', approverRole: 'supervisor', recoveredBy: 'sweeper' });
      });

      it("an approver's retry settles an approval whose process died before writing, then approves it once", async () => {
        const { order: placed, payment: paid } = await fresh();
        const asked = await call(`/v1/actions/orders/${placed.id}/refunds`, { amount: { currencyCode: 'EUR', amount: '75.00' }, reason: 'broken' });
        const id = asked.body.id as string;
        const dying = dyingProcess({ when: 'before', resource: 'payment' });
        await dying.dieDuring((service) => service.decide(id, caller('super-sam', 'supervisor'), 'approve', 'corr-approve'));
        expect(await refunds(paid.id)).toHaveLength(0);
        expire();
        const approved = await call(`/v1/actions/${id}/approve`, undefined, { as: 'supervisor' });
        expect(approved.status).toBe(200);
        expect(approved.body).toMatchObject({ id, status: 'done', decidedBy: 'super-sam' });
        expect((await refunds(paid.id)).map((t) => t.amount.centAmount)).toEqual([7500]);
        expect(await outcomes(placed.id)).toEqual(['pending', 'failed:retry', 'approved']);
      });

      it('a call that stalled past its lease writes nothing once a retry has taken it over', async () => {
        const { order: placed, payment: paid } = await fresh();
        const body = { amount: { currencyCode: 'EUR', amount: '6.00' }, reason: 'goodwill' };
        const key = newKey();
        const stalling = dyingProcess({ when: 'before', resource: 'payment' });
        await stalling.dieDuring((service) => service.perform(refundCall(placed.id, key, body)));
        expire();
        const retried = await call(`/v1/actions/orders/${placed.id}/refunds`, body, { key });
        expect(retried.status).toBe(200);
        // The stalled process comes back and sends the write it had planned: the payment moved (409), and it finds
        // its row taken over instead of planning the refund again.
        const late = await stalling.resume();
        expect(late.body).toMatchObject({ rule: 'idempotency-in-progress' });
        expect((await refunds(paid.id)).map((t) => t.amount.centAmount)).toEqual([600]);
        expect((await call(`/v1/actions/orders/${placed.id}/refunds`, body, { key })).body).toEqual(retried.body);
      });
    });

    describe('limits and approvals', () => {
      it("turns a refund above the role's limit into a pending approval that only another, allowed role approves", async () => {
        const { order: placed, payment: paid } = await fresh();
        const body = { amount: { currencyCode: 'EUR', amount: '80.00' }, reason: 'broken on arrival' };
        const key = newKey();
        const asked = await call(`/v1/actions/orders/${placed.id}/refunds`, body, { key });
        expect(asked.status).toBe(202);
        expect(asked.body).toMatchObject({ status: 'pending', refund: { amount: { amount: '80.00' } } });
        const id = asked.body.id as string;
        expect(asked.headers.location).toBe(`/v1/actions/${id}`);
        expect(await refunds(paid.id)).toHaveLength(0);

        expect((await call(`/v1/actions/${id}`, undefined, { as: 'agent' })).body).toMatchObject({ id, status: 'pending', requestedBy: { client: 'agent-ann', role: 'agent' } });
        // Another agent may neither see nor approve it; the lead may approve but not above their own limit.
        expect((await call(`/v1/actions/${id}`, undefined, { as: 'agent2' })).status).toBe(404);
        expect((await call(`/v1/actions/${id}/approve`, undefined, { as: 'agent2' })).status).toBe(404);
        const requester = await call(`/v1/actions/${id}/approve`, undefined, { as: 'agent' });
        expect(requester.body).toMatchObject({ rule: 'approver-not-allowed', status: 403 });
        expect(await refunds(paid.id)).toHaveLength(0);

        const approved = await call(`/v1/actions/${id}/approve`, undefined, { as: 'supervisor' });
        expect(approved.status).toBe(200);
        expect(approved.body).toMatchObject({ id, status: 'done', decidedBy: 'super-sam', result: { refund: { amount: { centAmount: 8000 } } } });
        expect((await refunds(paid.id)).map((t) => t.amount.centAmount)).toEqual([8000]);
        // Deciding again is refused; the original call's retry gets its answer again.
        expect((await call(`/v1/actions/${id}/reject`, undefined, { as: 'supervisor' })).body).toMatchObject({ rule: 'not-pending' });
        expect((await call(`/v1/actions/orders/${placed.id}/refunds`, body, { key })).body).toEqual(asked.body);
        expect((await audit(placed.id)).map((e) => (typeof e.detail.rule === 'string' ? `${e.outcome}:${e.detail.rule}` : e.outcome))).toEqual(['pending', 'refused:approver-not-allowed', 'approved']);
      });

      it('never lets a requester approve their own request, and counts what the order had refunded against the limit', async () => {
        const { order: placed, payment: paid } = await fresh();
        // 60 through the supervisor, then the lead's 45 takes the order past the lead's 100.
        await call(`/v1/actions/orders/${placed.id}/refunds`, { amount: { currencyCode: 'EUR', amount: '60.00' }, reason: 'r' }, { as: 'supervisor' });
        const asked = await call(`/v1/actions/orders/${placed.id}/refunds`, { amount: { currencyCode: 'EUR', amount: '45.00' }, reason: 'r' }, { as: 'lead' });
        expect(asked.status).toBe(202);
        const id = asked.body.id as string;
        expect((await call(`/v1/actions/${id}/approve`, undefined, { as: 'lead' })).body).toMatchObject({ rule: 'own-request', status: 403 });
        const rejected = await call(`/v1/actions/${id}/reject`, undefined, { as: 'supervisor' });
        expect(rejected.body).toMatchObject({ status: 'rejected', decidedBy: 'super-sam' });
        expect((await refunds(paid.id)).map((t) => t.amount.centAmount)).toEqual([6000]);
      });

      it('holds a cancellation with a refund above the limit for approval, then cancels and refunds together', async () => {
        const { order: placed, payment: paid } = await fresh({ lines: [{ sku: 'SHIRT-1', quantity: 3, unitCents: 3000 }] });
        const line = placed.lineItems[0]!;
        const asked = await call(`/v1/actions/orders/${placed.id}/cancel-items`, { lineItems: [{ lineItemId: line.id, quantity: 2 }], refund: true, reason: 'r' });
        expect(asked.status).toBe(202);
        expect((await order(placed.id)).version).toBe(placed.version);
        const approved = await call(`/v1/actions/${asked.body.id as string}/approve`, undefined, { as: 'lead' });
        expect(approved.body).toMatchObject({ status: 'done', result: { cancelled: [{ lineItemId: line.id, quantity: 2 }], refund: { amount: { centAmount: 6000 } } } });
        expect((await order(placed.id)).lineItems[0]!.state).toEqual(expect.arrayContaining([{ quantity: 2, state: { typeId: 'state', id: shop.states.cancelled.id } }]));
        expect((await refunds(paid.id)).map((t) => t.amount.centAmount)).toEqual([6000]);
      });

      it('re-checks the safeguards when approving', async () => {
        const { order: placed, payment: paid } = await fresh();
        const asked = await call(`/v1/actions/orders/${placed.id}/refunds`, { amount: { currencyCode: 'EUR', amount: '90.00' }, reason: 'r' });
        await call(`/v1/actions/orders/${placed.id}/refunds`, { amount: { currencyCode: 'EUR', amount: '100.00' }, reason: 'r' }, { as: 'supervisor' });
        const approved = await call(`/v1/actions/${asked.body.id as string}/approve`, undefined, { as: 'supervisor' });
        expect(approved.body).toMatchObject({ rule: 'refund-exceeds-charge', status: 409 });
        expect((await refunds(paid.id)).map((t) => t.amount.centAmount)).toEqual([10000]);
      });
    });

    describe('bearer JWTs', () => {
      const claims = (overrides: Record<string, unknown> = {}) => ({ iss: ISSUER, aud: AUDIENCE, sub: 'agent-jo', ctbridge_role: 'agent', exp: Math.floor(clock / 1000) + 300, iat: Math.floor(clock / 1000), ...overrides });
      const refundAs = async (bearer: string) => {
        const { order: placed, payment: paid } = await fresh();
        const answer = await call(`/v1/actions/orders/${placed.id}/refunds`, { amount: { currencyCode: 'EUR', amount: '1.00' }, reason: 'r' }, { as: { bearer } });
        return { answer, refunds: await refunds(paid.id), audit: await audit(placed.id) };
      };

      it("accepts a token from the identity provider with the role in its claim", async () => {
        const { answer, audit: entries } = await refundAs(mintJwt(jwtKey, claims()));
        expect(answer.status).toBe(200);
        expect(entries[0]!.detail).toMatchObject({ actor: 'jwt:agent-jo', role: 'agent' });
      });

      it('refuses alg none, a wrong audience, an expired token, a foreign key and an unknown role, writing nothing', async () => {
        const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
        const forged = [
          `${b64({ alg: 'none', kid: jwtKey.kid })}.${b64(claims({ ctbridge_role: 'supervisor' }))}.`,
          mintJwt(jwtKey, claims({ aud: 'someone-else' })),
          mintJwt(jwtKey, claims({ exp: Math.floor(clock / 1000) - 3600 })),
          mintJwt({ kid: jwtKey.kid, privateKey: oidcKey().privateKey }, claims()),
          mintJwt(jwtKey, claims({ ctbridge_role: 'root' })),
        ];
        for (const token of forged) {
          const { answer, refunds: made } = await refundAs(token);
          expect(answer.status).toBe(401);
          expect(answer.body.type).toBe('urn:ctbridge:problem:unauthorized');
          expect(made).toHaveLength(0);
        }
      });
    });

    it('never refunds more than was charged, whatever refunds race on one order', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 2, maxLength: 6 }), async (euros) => {
          const { order: placed, payment: paid, total } = await fresh({ lines: [{ sku: 'SHIRT-1', quantity: 1, unitCents: 10000 }] });
          const answers = await Promise.all(euros.map((amount) => call(`/v1/actions/orders/${placed.id}/refunds`, { amount: { currencyCode: 'EUR', amount: `${amount}.00` }, reason: 'race' }, { as: 'supervisor' })));
          const made = await refunds(paid.id);
          const refunded = made.reduce((sum, t) => sum + t.amount.centAmount, 0);
          expect(refunded).toBeLessThanOrEqual(total);
          // Each refund that answered done is there once; each refusal names the charge rule.
          const done = answers.filter((a) => a.status === 200).map((a) => (a.body.refund as { amount: { centAmount: number } }).amount.centAmount);
          expect(made.map((t) => t.amount.centAmount).sort()).toEqual(done.sort());
          for (const answer of answers.filter((a) => a.status !== 200)) expect(answer.body.rule).toBe('refund-exceeds-charge');
        }),
        { numRuns: 8 },
      );
    }, 120_000);

    it('describes the action routes in the OpenAPI document', async () => {
      const document = (await started.runtime.app.inject({ method: 'GET', url: '/v1/openapi.json' })).json<{ paths: Record<string, Record<string, { operationId: string }>>; components: { schemas: Record<string, unknown> } }>();
      expect(document.paths['/v1/actions/orders/{orderId}/refunds']!.post!.operationId).toBe('refundOrder');
      expect(document.paths['/v1/actions/{id}/approve']!.post!.operationId).toBe('approveAction');
      expect(Object.keys(document.components.schemas)).toEqual(expect.arrayContaining(['RefundRequest', 'ActionDone', 'ActionPending', 'ActionDryRun']));
    });

    it('shows every attempt on an order with `ctbridge audit --order`', async () => {
      const { order: placed } = await fresh();
      const key = newKey();
      await call(`/v1/actions/orders/${placed.id}/refunds`, { amount: { currencyCode: 'EUR', amount: '500.00' }, reason: 'too much' }, { as: 'supervisor', key });
      await call(`/v1/actions/orders/${placed.id}/refunds`, { amount: { currencyCode: 'EUR', amount: '2.00' }, reason: 'fine' }, {});
      const dir = mkdtempSync(join(tmpdir(), 'ctbridge-actions-cli-'));
      try {
        const file = join(dir, 'ctbridge.yaml');
        writeFileSync(file, `commercetools: { projectKey: p, authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: id, clientSecret: secret }\nserver: { ingest: { auth: { type: none } } }\nstore: "${storeUrl}"\n`);
        const run = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
          execFile(process.execPath, [join(import.meta.dirname, '..', 'bin', 'ctbridge.js'), 'audit', '--order', placed.id, '--json', '--config', file], (_error, stdout, stderr) => resolve({ stdout, stderr }));
        });
        expect(run.stderr).toBe('');
        const printed = JSON.parse(run.stdout) as { entries: { action: string; outcome: string; detail: string }[] };
        expect(printed.entries.map((e) => [e.action, e.outcome])).toEqual([
          ['action.refund', 'refused'],
          ['action.refund', 'done'],
        ]);
        expect(JSON.parse(printed.entries[0]!.detail)).toMatchObject({ actor: 'super-sam', role: 'supervisor', idempotencyKey: key, rule: 'refund-exceeds-charge', reason: 'too much' });
        expect(JSON.parse(printed.entries[1]!.detail)).toMatchObject({ actor: 'agent-ann', amount: { amount: '2.00' }, orderVersionBefore: placed.version });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 60_000);

    it('refuses malformed JSON and invalid bodies precisely', async () => {
      const { order: placed } = await fresh();
      const malformed = await call(`/v1/actions/orders/${placed.id}/refunds`, '{"amount":');
      expect(malformed).toMatchObject({ status: 400, body: { rule: 'malformed-json' } });
      const invalid = await call(`/v1/actions/orders/${placed.id}/refunds`, { amount: { currencyCode: 'EUR', amount: '-5' }, lineItems: [], reason: '' });
      expect(invalid.status).toBe(400);
      expect(invalid.body).toMatchObject({ rule: 'invalid-body' });
      expect((invalid.body.issues as { path: string }[]).map((i) => i.path)).toEqual(expect.arrayContaining(['amount.amount', 'reason']));
    });
  });
}
