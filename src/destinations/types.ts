// The connector interface: what the engine gives a connector (items, deps) and what it calls. A connector folder
// describes itself declaratively with the kit's `defineDestination` (kit/define.ts), which builds the
// `DestinationDefinition` below from it. Failures are expressed with the kit's error classes (kit/errors.ts),
// thrown for the whole batch or returned per item.
import type { z } from 'zod';
import type { Logger } from 'pino';
import type { DeliveryError } from './kit/errors.ts';
import type { DestinationFetch } from './kit/fetch.ts';
import type { ResolvedPerson } from '../identity/identities.ts';
import type { LoyaltyReward } from '../commercetools/reward-codes.ts';

/** One record (a commercetools resource mapped for this destination) to create, update or delete. */
export interface RecordItem {
  /** The record mapping's name in the configuration. */
  recordType: string;
  /** The commercetools resource type it maps (customer, order…). */
  resourceType: string;
  /** The commercetools resource id. */
  resourceId: string;
  operation: 'upsert' | 'delete';
  /** The resource version this state comes from. */
  version: number;
  /** What to send: only the changed fields, or the full record when the connector asks for it. */
  fields: Record<string, unknown>;
  /** The whole mapped record, for connectors that need context beyond the changed fields. */
  record: Record<string, unknown>;
  /** Names of the fields that changed since the last successful send (all fields on first send). */
  changed: string[];
  /**
   * What the destination was last sent of this record, as confirmed (personal fields as digests): lets a
   * connector work out removals (tags, values no longer there). After an unconfirmed send the destination may hold
   * that send's state or this one (`fields` is then the whole record). Undefined on a first send.
   */
  previous?: Record<string, unknown> | undefined;
  /** The destination's id for this record, when a previous send returned one. */
  destinationId: string | undefined;
  /** Stable for this (destination, record, version): a retry of the same state carries the same key. */
  idempotencyKey: string;
  /**
   * The order of this record's sends: larger for every later send (each claim of the key bumps it, in the store),
   * also when the version stays the same (a customer whose orders changed). A receiver that keeps only the newest
   * state compares this, not the version.
   */
  sequence?: number | undefined;
  correlationId: string;
  /** Routing settings from a matching `when:` block (see DestinationDefinition.target); undefined: the default. */
  target: Record<string, unknown> | undefined;
  /** The person the record is about (identity/), with the destination's id for them when known. */
  person?: ResolvedPerson | undefined;
}

/** One timeline event, delivered once. */
export interface EventItem {
  /** The event mapping's name in the configuration. */
  eventType: string;
  /** The commercetools message type it came from (`OrderCreated`). */
  sourceType: string;
  resource: { typeId: string; id: string } | undefined;
  payload: Record<string, unknown>;
  /** Derived from the source message id: the destination's dedupe key. */
  idempotencyKey: string;
  correlationId: string;
  occurredAt: number | undefined;
  /** Routing settings from a matching `when:` block; undefined: the default. */
  target: Record<string, unknown> | undefined;
  /** The person the event is about, after merges (a guest's event goes to the customer they became). */
  person?: ResolvedPerson | undefined;
}

/** A guest found to be a registered customer: the connector merges the guest's profile into the customer's. */
export interface PersonMergeItem {
  from: { person: string; destinationId: string | undefined };
  into: { person: string; destinationId: string | undefined };
  idempotencyKey: string;
  correlationId: string;
}

/** One record to read back from the destination, as ctbridge last delivered it (reconciliation). */
export interface RecordReadItem {
  recordType: string;
  resourceType: string;
  resourceId: string;
  /** The destination's id for the record, when a send returned one. */
  destinationId: string | undefined;
  /** Where it was sent (a `when:` block's target), undefined for the default. */
  target: Record<string, unknown> | undefined;
  /** The mapped fields to read, by their names in the mapping. */
  fields: readonly string[];
}

/**
 * What the destination holds of a record now: the mapped fields it can read, as the mapping produces them (a field
 * it cannot read back is left out, never guessed), or that it holds no such record.
 */
export type RecordReadOutcome = { found: true; fields: Record<string, unknown> } | { found: false } | { found: 'error'; error: DeliveryError };

/**
 * `personId`: the destination's id for the person the item is about, when the connector learnt it. `skipped`: the
 * connector decided the destination has nothing to receive (an event about a guest, a message meaning nothing
 * there); an event is then done and audited as skipped, not as delivered. `settlesAt` (ms): the destination
 * accepted the item but may still refuse it until then (it validates later and the connector reports a refusal
 * through `reportLateFailures`, as Ometria's does); an event's delivery is kept until then, so that the dead letter
 * of a late refusal can be replayed.
 */
export type ItemOutcome = { ok: true; destinationId?: string; personId?: string; skipped?: true; settlesAt?: number } | { ok: false; error: DeliveryError };

export interface ConnectorLimits {
  /** Most items one send call may carry. */
  maxBatchSize: number;
  /** Calls per second allowed towards the destination, shared by all workers of this process. */
  rateLimit?: { requestsPerSecond: number; burst?: number } | undefined;
}

export interface Connector {
  readonly limits: ConnectorLimits;
  /** 'changed' sends only changed fields; 'full' sends the whole record whenever anything changed. */
  readonly delta: 'changed' | 'full';
  sendRecords(items: RecordItem[]): Promise<ItemOutcome[]>;
  sendEvents(items: EventItem[]): Promise<ItemOutcome[]>;
  /**
   * What must hold before any work (custom attributes exist with the right types…). A PermanentError stops
   * start-up with its message; any other failure (the destination unreachable) only postpones the check to the
   * first send, which must then make it again.
   */
  prepare?(): Promise<void>;
  /**
   * Reads records back from the destination (reconciliation: what it holds now against what ctbridge delivered);
   * without it only ctbridge's own snapshots are compared. One outcome per item, in order.
   */
  readRecords?(items: RecordReadItem[]): Promise<RecordReadOutcome[]>;
  /** Merges guests' profiles into registered customers' (Intercom: lead into user); without it they are linked only. */
  mergePeople?(items: PersonMergeItem[]): Promise<ItemOutcome[]>;
  /** Lists the destination's changes since `cursor` (two-way sync by polling, `inbound.poll`); see InboundPage. */
  pollInbound?(cursor: string | undefined, now: number): Promise<InboundPage>;
  close?(): Promise<void>;
}

/**
 * What a poll of a destination found: changes as bodies its `inbound.changes` reads, each under an id of its own
 * (stored once, like a webhook delivery: a change listed by two polls is worked once), and where the next poll
 * starts (kept only once the bodies are stored).
 */
export interface InboundPage {
  deliveries: Array<{ dedupeKey: string; body: unknown }>;
  cursor: string;
}

export interface ConnectorDeps {
  /**
   * Every call to the destination goes through this fetch (kit/fetch.ts): it waits for the destination's shared
   * rate limiter, counts the call, times the exchange and pauses everyone on a 429. Give it to an SDK that accepts
   * a fetch, or wrap it in the kit's http client.
   */
  fetch: DestinationFetch;
  logger: Logger;
  /** The destination's name in the configuration. */
  name: string;
  /** Distinct event seconds, for a destination that deduplicates events on their time in seconds. */
  eventSeconds: EventSeconds;
  /**
   * What the connector keeps between sends, in the store, shared by every process sending to this destination
   * (Ometria: the consent last sent per contact, the records waiting for asynchronous validation).
   */
  state?: ConnectorState | undefined;
  /**
   * Failures the destination reports after it accepted an item (Ometria validates asynchronously): each becomes a
   * dead letter for that record or event, as if its send had failed permanently.
   */
  reportLateFailures?: ((failures: LateFailure[]) => Promise<void>) | undefined;
  /** The clock (tests inject one). */
  now?: (() => number) | undefined;
}

/**
 * Seconds claimed by events, kept in the store for every process sending to the destination: for an API that
 * takes two events of one scope (Intercom: one name, one contact) in the same second as one and drops the second
 * (store/event-seconds.ts).
 */
export interface EventSeconds {
  /**
   * The second an event is sent at within its scope: the one it claimed before (a redelivery, so the destination
   * still sees a duplicate), else `second` itself or, when another event of the scope has it, the first free one
   * after it.
   */
  claim(claim: { scope: string; eventKey: string; second: number; person: string | undefined }): Promise<number>;
}

/** A connector's keyed values in the store; `subject` (a customer id) lets an erasure remove what is about them. */
export interface ConnectorState {
  get(keys: readonly string[]): Promise<Map<string, unknown>>;
  put(entries: ReadonlyArray<{ key: string; value: unknown; subject?: string | undefined }>): Promise<void>;
  /** Writes the entry only when its key is absent; true when this call wrote it (of two processes, one does). */
  add(entry: { key: string; value: unknown; subject?: string | undefined }): Promise<boolean>;
  /** Deletes these keys; returns the ones that existed (and so were taken by this call, not by another process). */
  take(keys: readonly string[]): Promise<string[]>;
  /** The entries whose key starts with `prefix`, in key order, after `after` when given. */
  list(prefix: string, options?: { limit?: number; after?: string }): Promise<Array<{ key: string; value: unknown }>>;
}

/** A failure reported after the destination accepted the item, for the record or event it names. */
export type LateFailure =
  | { kind: 'record'; recordType: string; resourceId: string; correlationId: string; error: string; sentAt: number }
  | { kind: 'event'; eventType: string; dedupeKey: string; correlationId: string; error: string; sentAt: number };

/** What the engine knows of a destination type; built from a connector's declarative definition by kit/define.ts. */
export interface DestinationDefinition<Settings extends z.ZodObject = z.ZodObject> {
  type: string;
  description: string;
  /** Connection settings of this destination type (everything besides name/type/records/events). */
  settings: Settings;
  /**
   * Where one record or event can be sent instead of the default, set by a mapping's `when:` blocks (another
   * board, collection or URL); the connector receives it as the item's `target`. Without it, no routing.
   */
  target?: z.ZodObject;
  /**
   * Checks the mapped field names against what the destination has (its attributes, columns or fields), at
   * start-up: each problem names the mapping and field. Only what can be known without calling the destination.
   */
  checkFields?(settings: z.infer<Settings>, mappings: MappedFieldNames): FieldProblem[];
  /** Rules across settings that each setting's own schema cannot say (a market outside the brand's stores). */
  checkSettings?(settings: z.infer<Settings>): SettingsProblem[];
  /**
   * The record and event mappings a destination of this type gets when it maps nothing itself (its `records:` and
   * `events:` both left out), from its settings: a working set-up out of the box.
   */
  defaultMappings?(settings: z.infer<Settings>): { records: Record<string, unknown>; events: Record<string, unknown> };
  create(settings: z.infer<Settings>, deps: ConnectorDeps): Connector;
  /** How the destination's webhooks read (two-way sync); without it, the destination sends nothing back. */
  inbound?: InboundDefinition<z.infer<Settings>>;
}

/** One field a destination says changed, in the mapped field's own terms (engine/inbound-work.ts writes it back). */
export interface InboundChange {
  /** The record mappings the item may belong to (a board can hold several). */
  recordTypes: string[];
  /** The destination's id of the item (monday's item id), or … */
  destinationId?: string | undefined;
  /** … the commercetools id, when the destination knows it. */
  resourceId?: string | undefined;
  /** The mapped field's name. */
  field: string;
  /** The value as the mapping produces it (a status label, an E.164 number…). */
  value: unknown;
  /** When the destination's change happened (ms), for lastWriteWins. */
  at: number;
  /** The change was ctbridge's own write (the destination says who made it): never an edit, only what it holds. */
  byUs?: boolean | undefined;
}

/** The inbound auth kinds (config/ownership.ts inboundAuthSchema) and how a destination's webhook bodies read. */
export interface InboundDefinition<Settings> {
  auth: ReadonlyArray<'monday' | 'hmac' | 'sharedSecret' | 'momentis'>;
  /** A verification request (monday's `{challenge}`): what to answer, echoed without storing anything. */
  challenge?(body: unknown): unknown;
  /** The delivery's own id, so a redelivery is stored once (otherwise a digest of the body). */
  dedupeKey?(body: unknown): string | undefined;
  /** The changes a stored body says; throws PermanentError when it cannot be read (a dead letter says why). */
  changes(settings: Settings, body: unknown): InboundChange[];
  /** The connector can list changes (Connector.pollInbound), for `inbound.poll`. */
  polls?: boolean;
  /**
   * For fields the destination owns outright and sends whole (Momentis' loyalty state), instead of field edits:
   * the snapshot a body carries, written to the resource's custom fields when it is newer than the one there.
   * Undefined: the body is read by `changes`. Throws PermanentError when it cannot be read.
   */
  snapshot?(settings: Settings, body: unknown): InboundSnapshot | undefined;
  /** The custom Type fields its snapshots write, which `ctbridge setup` creates. */
  snapshotFields?(settings: Settings): Array<{ type: string; resourceTypeId: 'customer' | 'order'; field: string; fieldType: 'String' | 'Number' | 'Boolean' }>;
}

/** The whole state of fields a destination owns, for one resource (engine/inbound-work.ts writes it). */
export interface InboundSnapshot {
  resourceType: 'customer' | 'order';
  /** The commercetools id. */
  resourceId: string;
  /** The key of the custom Type that has the fields. */
  type: string;
  /** The custom fields' values (null: removed). */
  fields: Record<string, string | number | boolean | null>;
  /** The field holding the snapshot's version: a snapshot not newer than the one commercetools holds is dropped. */
  versionField: string;
  version: number;
  /** Rewards that become customer-bound discount codes once the snapshot is written (commercetools/reward-codes.ts). */
  rewardCodes?: SnapshotRewardCodes | undefined;
}

export interface SnapshotRewardCodes {
  /** The member's full reward list in this snapshot. */
  rewards: LoyaltyReward[];
  prefix: string;
  storeKey?: string | undefined;
  /** The custom field holding the available rewards as JSON (what a newer snapshot left there). */
  rewardsField: string;
}

/** The field names each record and event mapping of a destination sends (its own and its when: blocks'). */
export interface MappedFieldNames {
  records: Record<string, string[]>;
  /** The commercetools resource type each record mapping reads (its source, or its name). */
  recordSources: Record<string, string>;
  events: Record<string, string[]>;
}

/** A setting at fault: its path in the destination block, and why. */
export interface SettingsProblem {
  path: ReadonlyArray<string | number>;
  message: string;
}

export interface FieldProblem {
  block: 'records' | 'events';
  mapping: string;
  /** The field at fault, or '' for the mapping as a whole (e.g. a source the destination has no use for). */
  field: string;
  message: string;
}
