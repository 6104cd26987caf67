// What the two-way sync tests beyond test/two-way.test.ts share: a monday simulator with a customer board (an
// external id, an e-mail and a status), ctbridge started on a store of the matrix against the commercetools
// emulator with the caller's monday destination block, a writer that counts what reaches commercetools, and the
// helpers to create customers, announce them as the Subscription would and wait for inbound work.
import pino from 'pino';
import { expect } from 'vitest';
import { createCommercetoolsClient, type CommercetoolsClient } from '../../src/commercetools/client.ts';
import type { CommercetoolsWriter } from '../../src/commercetools/writeback.ts';
import { configSchema } from '../../src/config/schema.ts';
import { startRuntime, type Runtime } from '../../src/runtime.ts';
import type { SimBoard } from '../../src/sandbox/monday/account.ts';
import { emulatorCredentials, type Emulator } from '../../src/sandbox/emulator.ts';
import { startMondaySimulator, type MondaySimulator } from '../../src/sandbox/monday/simulator.ts';
import { ADMIN_TOKEN, INGEST_TOKEN, customerMessage, untilDone } from './harness.ts';

export const MONDAY_TOKEN = 'monday-two-way-token';
/** The monday user ctbridge's token acts as. */
export const API_USER = 7_000_001;

export interface TwoWay {
  runtime: Runtime;
  sim: MondaySimulator;
  board: SimBoard;
  ct: CommercetoolsClient;
  /** Writes that reached commercetools (updates and custom objects). */
  writes: number;
  stop(): Promise<void>;
}

export interface TwoWayOptions {
  emulator: Emulator;
  storeUrl: string;
  /** The monday destination's block beyond name, type, token, endpoint, apiUserId and boards. */
  destination: (board: SimBoard) => Record<string, unknown>;
  engine?: Record<string, unknown>;
  wrapWriter?: (writer: CommercetoolsWriter, ct: CommercetoolsClient) => CommercetoolsWriter;
  now?: () => number;
}

export async function startTwoWay(options: TwoWayOptions): Promise<TwoWay> {
  const sim = await startMondaySimulator({ token: MONDAY_TOKEN, ...(options.now && { now: options.now }) });
  const board = sim.account.createBoard({
    name: 'Accounts',
    columns: [
      { id: 'ext_id', type: 'text' },
      { id: 'email', type: 'email' },
      { id: 'stage', type: 'status', labels: ['Lead', 'Customer', 'Churned'] },
    ],
  });
  const ct = createCommercetoolsClient(emulatorCredentials(options.emulator));
  const config = configSchema.parse({
    commercetools: { ...emulatorCredentials(options.emulator), scopes: [] },
    server: { port: 0, host: '127.0.0.1', ingest: { auth: { type: 'bearer', token: INGEST_TOKEN } }, adminToken: ADMIN_TOKEN },
    store: options.storeUrl,
    engine: { pollIntervalMs: 50, backoffBaseMs: 20, backoffMaxMs: 200, leaseMs: 5_000, maxAttempts: 4, ...options.engine },
    destinations: [
      {
        name: 'crm',
        type: 'monday',
        token: MONDAY_TOKEN,
        endpoint: sim.url,
        apiUserId: API_USER,
        boards: { customer: { board: board.id, externalIdColumn: 'ext_id', columns: { email: 'email', stage: 'stage' } } },
        ...options.destination(board),
      },
    ],
  });
  const setup = { writes: 0 } as TwoWay;
  const runtime = await startRuntime({
    config,
    logger: pino({ level: 'silent' }),
    listen: true,
    wrapWriter: (writer) => {
      const counted: CommercetoolsWriter = {
        ...writer,
        update: async (...args) => {
          const updated = await writer.update(...args);
          setup.writes += 1;
          return updated;
        },
        writeCustomObject: async (...args) => {
          const written = await writer.writeCustomObject(...args);
          setup.writes += 1;
          return written;
        },
      };
      return options.wrapWriter ? options.wrapWriter(counted, ct) : counted;
    },
  });
  return Object.assign(setup, {
    runtime,
    sim,
    board,
    ct,
    async stop() {
      await runtime.stop();
      await sim.close();
      await ct.close();
    },
  });
}

export async function createCustomer(s: TwoWay): Promise<Record<string, unknown>> {
  const { body } = await s.ct.api
    .customers()
    .post({ body: { email: `two.way.${Math.random().toString(36).slice(2)}@example.org`, firstName: 'Ada', lastName: 'Lovelace' } })
    .execute();
  return body.customer as unknown as Record<string, unknown>;
}

export const readCustomer = async (s: TwoWay, id: string) => (await s.ct.api.customers().withId({ ID: id }).get().execute()).body as unknown as Record<string, unknown> & { version: number; custom?: { fields: Record<string, unknown> } };

/** Sends the message of a customer's current version and waits until record sync has processed it. */
export async function announce(s: TwoWay, customer: Record<string, unknown>, type: string): Promise<void> {
  const response = await fetch(`${s.runtime.url}/v1/ingest/commercetools`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST_TOKEN}` }, body: JSON.stringify(customerMessage(customer, type)) });
  expect(response.status).toBe(202);
  await until(s, async () => {
    const row = await s.runtime.store.db.selectFrom('records').select(['processed_seq', 'dirty_seq', 'synced_version']).where('destination', '=', 'crm').where('resource_id', '=', customer.id as string).executeTakeFirst();
    return row !== undefined && Number(row.processed_seq) >= Number(row.dirty_seq) && Number(row.synced_version) >= (customer.version as number);
  }, `record sync of ${type}`);
}

/** Waits for `check`, for as long as the simulator, the writes or inbound work make progress. */
export function until(s: TwoWay, check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  return untilDone(async () => ({ done: await check(), remaining: s.sim.stats.calls + s.writes + (await s.runtime.store.db.selectFrom('inbound').select('id').execute()).length }), what, 15_000);
}

export const inboundDone = async (s: TwoWay) => (await s.runtime.store.db.selectFrom('inbound').select('id').where('state', '=', 'pending').execute()).length === 0;

export const writebacks = (s: TwoWay, resourceId: string) => s.runtime.store.db.selectFrom('audit_log').selectAll().where('action', '=', 'writeback').where('resource_id', '=', resourceId).orderBy('id').execute();

export const itemOf = (s: TwoWay, customerId: string) => s.sim.account.itemsOf(s.board.id).find((item) => item.values.get('ext_id')?.text === customerId);
