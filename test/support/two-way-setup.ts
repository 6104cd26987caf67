// What the two-way sync tests share: a monday simulator with a customer board (an external id, an e-mail and a
// status, and any columns a test adds), ctbridge started on a store of the matrix against the commercetools emulator
// with the caller's monday destination block (and any other destinations), monday's webhooks registered when the
// test asks for them, a writer that counts what reaches commercetools, and the helpers to create and change
// customers, announce them as the Subscription would and wait for inbound work. The suite helper stops each test's
// set-up after it, on each store of the matrix (the file's emulator: useEmulator in emulator.ts).
import { afterAll, afterEach, expect } from 'vitest';
import { createCommercetoolsClient, type CommercetoolsClient } from '../../src/commercetools/client.ts';
import type { CommercetoolsWriter } from '../../src/commercetools/writeback.ts';
import type { Config } from '../../src/config/schema.ts';
import type { BoardSpec, SimBoard } from '../../src/sandbox/monday/account.ts';
import { emulatorCredentials, type Emulator } from '../../src/sandbox/emulator.ts';
import { startMondaySimulator, type MondaySimulator } from '../../src/sandbox/monday/simulator.ts';
import { mondayWebhooks, type MondayWebhooks } from '../../src/sandbox/monday/webhooks.ts';
import { customerMessage, startTestRuntime, untilDone, type TestRuntime } from './harness.ts';
import type { TestStore } from './stores.ts';

export const MONDAY_TOKEN = 'monday-two-way-token';
/** The monday app's Signing Secret: webhooks are signed with it, and the crm destination's inbound checks it. */
export const SIGNING_SECRET = 'monday-app-signing-secret-0123456789';
/** The monday user ctbridge's token acts as. */
export const API_USER = 7_000_001;

export interface TwoWay extends TestRuntime {
  sim: MondaySimulator;
  board: SimBoard;
  ct: CommercetoolsClient;
  /** monday's webhooks to the crm destination, when the set-up was asked for them (registered). */
  hooks: MondayWebhooks | undefined;
  /** Writes that reached commercetools (updates and custom objects). */
  writes: number;
}

/** A set-up whose monday webhooks were asked for. */
export type TwoWayWithHooks = TwoWay & { hooks: MondayWebhooks };

export interface TwoWayOptions {
  emulator: Emulator;
  storeUrl: string;
  /** The monday destination's block beyond name, type, token, endpoint, apiUserId and boards. */
  destination: (board: SimBoard) => Record<string, unknown>;
  engine?: Partial<Config['engine']>;
  /** Columns of the customer board beyond ext_id, email and stage. */
  extraColumns?: BoardSpec['columns'];
  /** Destinations beside the monday one (e.g. a generic inbound), given the simulator. */
  otherDestinations?: (sim: MondaySimulator) => Array<Record<string, unknown>>;
  /**
   * Registers monday's webhooks of the board to the crm destination (held until released when `hold`), signed with
   * SIGNING_SECRET, which the destination's inbound checks unless its block says otherwise.
   */
  webhooks?: { hold?: boolean };
  wrapWriter?: (writer: CommercetoolsWriter, ct: CommercetoolsClient) => CommercetoolsWriter;
  /** monday's clock (the simulator's and its webhooks'). */
  now?: () => number;
}

export function startTwoWay(options: TwoWayOptions & { webhooks: NonNullable<TwoWayOptions['webhooks']> }): Promise<TwoWayWithHooks>;
export function startTwoWay(options: TwoWayOptions): Promise<TwoWay>;
export async function startTwoWay(options: TwoWayOptions): Promise<TwoWay> {
  const sim = await startMondaySimulator({ token: MONDAY_TOKEN, ...(options.now && { now: options.now }) });
  const board = sim.account.createBoard({
    name: 'Accounts',
    columns: [
      { id: 'ext_id', type: 'text' },
      { id: 'email', type: 'email' },
      { id: 'stage', type: 'status', labels: ['Lead', 'Customer', 'Churned'] },
      ...(options.extraColumns ?? []),
    ],
  });
  const ct = createCommercetoolsClient(emulatorCredentials(options.emulator));
  const setup = { writes: 0 } as TwoWay;
  const started = await startTestRuntime({
    storeUrl: options.storeUrl,
    commercetools: { ...emulatorCredentials(options.emulator), scopes: [] },
    engine: { maxAttempts: 4, ...options.engine },
    destinations: [
      {
        name: 'crm',
        type: 'monday',
        token: MONDAY_TOKEN,
        endpoint: sim.url,
        apiUserId: API_USER,
        boards: { customer: { board: board.id, externalIdColumn: 'ext_id', columns: { email: 'email', stage: 'stage' } } },
        ...(options.webhooks && { inbound: { auth: { type: 'monday', signingSecret: SIGNING_SECRET } } }),
        ...options.destination(board),
      },
      ...(options.otherDestinations?.(sim) ?? []),
    ],
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
    closeAfter: [sim, ct],
  });
  let hooks: MondayWebhooks | undefined;
  if (options.webhooks) {
    hooks = mondayWebhooks(sim.account, { url: `${started.runtime.url}/v1/inbound/crm`, signingSecret: SIGNING_SECRET, boardId: board.id, hold: options.webhooks.hold ?? false, apiUserId: API_USER, ...(options.now && { now: options.now }) });
    await hooks.register();
  }
  return Object.assign(setup, {
    ...started,
    sim,
    board,
    ct,
    hooks,
    async stop() {
      hooks?.stop();
      await started.stop();
    },
  });
}

/**
 * Inside a describe of one store of the matrix: `start` starts a set-up on a new database of that store against the
 * file's emulator; each test's set-up is stopped after it, whatever its outcome, and the store's databases are
 * dropped after the describe.
 */
export function twoWayPerTest(store: TestStore, env: { readonly emulator: Emulator }): {
  start(options: Omit<TwoWayOptions, 'emulator' | 'storeUrl'> & { webhooks: NonNullable<TwoWayOptions['webhooks']> }): Promise<TwoWayWithHooks>;
  start(options: Omit<TwoWayOptions, 'emulator' | 'storeUrl'>): Promise<TwoWay>;
} {
  let current: TwoWay | undefined;
  afterEach(async () => {
    const stopping = current;
    current = undefined;
    await stopping?.stop();
  });
  afterAll(() => store.cleanup());
  return {
    async start(options: Omit<TwoWayOptions, 'emulator' | 'storeUrl'>) {
      current = await startTwoWay({ ...options, emulator: env.emulator, storeUrl: await store.create() });
      return current as TwoWayWithHooks;
    },
  };
}

/** A new customer in commercetools (Ada Lovelace, a unique e-mail), with custom fields of the Type `custom.type` if given. */
export async function createCustomer(s: TwoWay, custom?: { type: string; fields: Record<string, string> }): Promise<Record<string, unknown>> {
  const { body } = await s.ct.api
    .customers()
    .post({ body: { email: `two.way.${Math.random().toString(36).slice(2)}@example.org`, firstName: 'Ada', lastName: 'Lovelace', ...(custom && { custom: { type: { typeId: 'type', key: custom.type }, fields: custom.fields } }) } })
    .execute();
  return body.customer as unknown as Record<string, unknown>;
}

export const readCustomer = async (s: TwoWay, id: string) => (await s.ct.api.customers().withId({ ID: id }).get().execute()).body as unknown as Record<string, unknown> & { version: number; custom?: { fields: Record<string, unknown> } };

/** Applies update actions to a customer at its current version; returns the customer as updated. */
export async function updateCustomer(s: TwoWay, id: string, actions: Array<Record<string, unknown>>): Promise<Record<string, unknown>> {
  const current = await readCustomer(s, id);
  return (await s.ct.api.customers().withId({ ID: id }).post({ body: { version: current.version, actions: actions as never } }).execute()).body as unknown as Record<string, unknown>;
}

/** Sends the message of a customer's current version and waits until record sync has processed it. */
export async function announce(s: TwoWay, customer: Record<string, unknown>, type: string): Promise<void> {
  const response = await s.post(customerMessage(customer, type));
  expect(response.status).toBe(202);
  await until(s, async () => {
    const row = await s.runtime.store.db.selectFrom('records').select(['processed_seq', 'dirty_seq', 'synced_version']).where('destination', '=', 'crm').where('resource_id', '=', customer.id as string).executeTakeFirst();
    return row !== undefined && Number(row.processed_seq) >= Number(row.dirty_seq) && Number(row.synced_version) >= (customer.version as number);
  }, `record sync of ${type}`);
}

/** Waits for `check`, for as long as the simulator, the webhooks, the writes or inbound work make progress. */
export function until(s: TwoWay, check: () => Promise<boolean> | boolean, what: string): Promise<void> {
  return untilDone(async () => ({ done: await check(), remaining: s.sim.stats.calls + (s.hooks?.delivered.length ?? 0) + s.writes + (await s.runtime.store.db.selectFrom('inbound').select('id').execute()).length }), what, 15_000);
}

export const inboundDone = async (s: TwoWay) => (await s.runtime.store.db.selectFrom('inbound').select('id').where('state', '=', 'pending').execute()).length === 0;

export const writebacks = (s: TwoWay, resourceId: string) => s.runtime.store.db.selectFrom('audit_log').selectAll().where('action', '=', 'writeback').where('resource_id', '=', resourceId).orderBy('id').execute();

export const itemOf = (s: TwoWay, customerId: string) => s.sim.account.itemsOf(s.board.id).find((item) => item.values.get('ext_id')?.text === customerId);
