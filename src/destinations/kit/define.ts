// A connector as a declaration, after Segment's action-destinations: its settings, limits and delta mode, an API
// client built once per destination (client.ts in its folder), and operations — small functions over that client,
// one file each — with which operation handles which item. `defineDestination` turns it into the engine's
// `DestinationDefinition`: it routes a batch's items to their operations (concurrently, outcomes back in item
// order), turns what an operation throws into that item's outcome, and runs `prepare` at start-up and before
// record sends until it has succeeded once.
import type { z } from 'zod';
import type { Connector, ConnectorDeps, ConnectorLimits, DestinationDefinition, EventItem, FieldProblem, InboundDefinition, InboundPage, ItemOutcome, MappedFieldNames, SettingsProblem, PersonMergeItem, RecordItem, RecordReadItem, RecordReadOutcome } from '../types.ts';
import { toDeliveryError } from './errors.ts';
import { withPayloadContext, type PayloadSubject } from './payload-context.ts';

/** Handles one item at a time: its outcome, or a thrown error that fails this item only. */
export interface ItemOperation<Client, Item> {
  /** What it does, in a few words (`upsert contact`). */
  readonly name: string;
  perform(client: Client, item: Item): Promise<ItemOutcome>;
}

/** Handles its items together (a batch call): one outcome per item, in order; a thrown error fails them all. */
export interface BatchOperation<Client, Item> {
  readonly name: string;
  performBatch(client: Client, items: Item[]): Promise<ItemOutcome[]>;
}

export type Operation<Client, Item> = ItemOperation<Client, Item> | BatchOperation<Client, Item>;

/** Which operation handles an item: the same for all, or chosen per item. */
export type Routing<Client, Item> = Operation<Client, Item> | ((item: Item) => Operation<Client, Item>);

export interface ConnectorDefinition<Settings extends z.ZodObject, Client> {
  type: string;
  description: string;
  /** Connection settings of this destination type (everything besides name/type/records/events). */
  settings: Settings;
  /** Where a `when:` block may send a record or event instead of the default (the item's `target`). */
  target?: z.ZodObject;
  /** Mapped fields the destination does not have, as start-up errors (see DestinationDefinition). */
  checkFields?(settings: z.infer<Settings>, mappings: MappedFieldNames): FieldProblem[];
  /** Rules across settings, as start-up errors (see DestinationDefinition). */
  checkSettings?(settings: z.infer<Settings>): SettingsProblem[];
  /** The mappings a destination that maps nothing itself gets (see DestinationDefinition). */
  defaultMappings?(settings: z.infer<Settings>): { records: Record<string, unknown>; events: Record<string, unknown> };
  /** Most items per send call, and the calls per second the destination allows (its shared rate limiter's rate). */
  limits(settings: z.infer<Settings>): ConnectorLimits;
  /** 'changed' sends only changed fields; 'full' sends the whole record whenever anything changed. */
  delta: 'changed' | 'full';
  /** The API client: SDK or HTTP set-up over `deps.fetch`, authentication, error classification. */
  client(settings: z.infer<Settings>, deps: ConnectorDeps): Client;
  /**
   * What must hold before records are sent (custom attributes exist…): run at start-up (a PermanentError stops
   * `ctbridge start`) and, until it has succeeded once, before each record send.
   */
  prepare?(client: Client): Promise<void>;
  records: Routing<Client, RecordItem>;
  events: Routing<Client, EventItem>;
  /** Merging a guest's profile into a registered customer's; without it they are linked only. */
  merges?: Routing<Client, PersonMergeItem>;
  close?(client: Client): Promise<void>;
  /** How the destination's webhooks read, for fields it owns or shares (two-way sync). */
  inbound?: InboundDefinition<z.infer<Settings>>;
  /**
   * Reading a record back as the destination holds it (reconciliation), when the destination can: `supported`
   * says whether these settings allow it (the http destination only with a read URL). A thrown error is that
   * item's outcome.
   */
  readBack?: {
    supported?(settings: z.infer<Settings>): boolean;
    read(client: Client, item: RecordReadItem): Promise<RecordReadOutcome>;
  };
  /** Lists the destination's changes since a cursor, as bodies `inbound.changes` reads (`inbound.poll`). */
  pollInbound?(client: Client, cursor: string | undefined, now: number): Promise<InboundPage>;
}

export function defineDestination<Settings extends z.ZodObject, Client>(definition: ConnectorDefinition<Settings, Client>): DestinationDefinition<Settings> {
  return {
    type: definition.type,
    description: definition.description,
    settings: definition.settings,
    ...(definition.target && { target: definition.target }),
    ...(definition.checkFields && { checkFields: definition.checkFields.bind(definition) }),
    ...(definition.checkSettings && { checkSettings: definition.checkSettings.bind(definition) }),
    ...(definition.defaultMappings && { defaultMappings: definition.defaultMappings.bind(definition) }),
    ...(definition.inbound && { inbound: { ...definition.inbound, ...(definition.pollInbound && { polls: true }) } }),
    create(settings, deps) {
      const client = definition.client(settings, deps);
      let prepared: Promise<void> | undefined;
      const prepare = definition.prepare?.bind(definition);
      const ready = prepare
        ? () =>
            (prepared ??= prepare(client).catch((error: unknown) => {
              // Not prepared after all: the next send (or start-up) tries again.
              prepared = undefined;
              throw error;
            }))
        : undefined;
      const merges = definition.merges;
      const readBack = definition.readBack && (definition.readBack.supported?.(settings) ?? true) ? definition.readBack : undefined;
      const connector: Connector = {
        limits: definition.limits(settings),
        delta: definition.delta,
        async sendRecords(items) {
          await ready?.();
          return run(client, definition.records, items);
        },
        sendEvents: (items) => run(client, definition.events, items),
        ...(ready && { prepare: ready }),
        ...(merges && { mergePeople: (items: PersonMergeItem[]) => run(client, merges, items) }),
        ...(definition.pollInbound && { pollInbound: (cursor: string | undefined, now: number) => definition.pollInbound!(client, cursor, now) }),
        ...(definition.close && { close: () => definition.close!(client) }),
        ...(readBack && { readRecords: (items: RecordReadItem[]) => readAll(client, readBack, items) }),
      };
      return connector;
    },
  };
}

/** The items grouped by the operation that handles them, all groups at once; outcomes in the items' order. */
async function run<Client, Item>(client: Client, routing: Routing<Client, Item>, items: Item[]): Promise<ItemOutcome[]> {
  const groups = new Map<Operation<Client, Item>, number[]>();
  items.forEach((item, index) => {
    const operation = typeof routing === 'function' ? routing(item) : routing;
    const group = groups.get(operation) ?? [];
    group.push(index);
    groups.set(operation, group);
  });
  const outcomes: ItemOutcome[] = new Array<ItemOutcome>(items.length);
  await Promise.all(
    [...groups].map(async ([operation, indexes]) => {
      if ('performBatch' in operation) {
        const batch = indexes.map((index) => items[index]!);
        const results = await withPayloadContext(batch.map(subjectOf), () => operation.performBatch(client, batch));
        indexes.forEach((index, at) => (outcomes[index] = results[at]!));
        return;
      }
      await Promise.all(
        indexes.map(async (index) => {
          const item = items[index]!;
          outcomes[index] = await withPayloadContext([subjectOf(item)], () => operation.perform(client, item)).catch((error: unknown): ItemOutcome => ({ ok: false, error: toDeliveryError(error) }));
        }),
      );
    }),
  );
  return outcomes;
}

/** Every item read at once (the destination's fetch paces the calls); a thrown error is that item's outcome. */
function readAll<Client>(client: Client, readBack: { read(client: Client, item: RecordReadItem): Promise<RecordReadOutcome> }, items: RecordReadItem[]): Promise<RecordReadOutcome[]> {
  return Promise.all(items.map((item) => withPayloadContext([subjectOf(item)], () => readBack.read(client, item)).catch((error: unknown): RecordReadOutcome => ({ found: 'error', error: toDeliveryError(error) }))));
}

/** What the payload log files a call under: the record, event or merge it was made for. */
function subjectOf(item: unknown): PayloadSubject {
  const it = item as Partial<RecordItem & EventItem & PersonMergeItem>;
  if (it.recordType !== undefined) return { kind: 'record', type: it.recordType, resourceId: it.resourceId, correlationId: it.correlationId ?? '' };
  if (it.eventType !== undefined) return { kind: 'event', type: it.eventType, resourceId: it.resource?.id, correlationId: it.correlationId ?? '' };
  // A merge is filed under the customer the guest became (`customer:<id>`).
  return { kind: 'merge', type: 'merge', resourceId: it.into?.person.replace(/^customer:/, ''), correlationId: it.correlationId ?? '' };
}
