// The tables ctbridge keeps, as Kysely types. Timestamps are milliseconds since the epoch (bigint columns);
// JSON documents are stored as text so SQLite and PostgreSQL share one code path.
import type { ColumnType, Generated } from 'kysely';

/** The two stores, one code path: SQLite (embedded) or PostgreSQL (shared by several processes). */
export type Dialect = 'sqlite' | 'postgres';

export interface Database {
  inbox: InboxTable;
  seen: SeenTable;
  records: RecordsTable;
  events: EventsTable;
  dead_letters: DeadLettersTable;
  transport_notices: TransportNoticesTable;
  rate_limits: RateLimitsTable;
  router_state: RouterStateTable;
  store_secrets: StoreSecretsTable;
  vault_tokens: VaultTokensTable;
  vault_token_owners: VaultTokenOwnersTable;
  audit_log: AuditLogTable;
  erasure_requests: ErasureRequestsTable;
  identities: IdentitiesTable;
  event_seconds: EventSecondsTable;
  connector_state: ConnectorStateTable;
  payload_log: PayloadLogTable;
  action_requests: ActionRequestsTable;
  backfills: BackfillsTable;
  inbound: InboundTable;
  field_state: FieldStateTable;
  scheduled_syncs: ScheduledSyncsTable;
  reconciliations: ReconciliationsTable;
  inbound_polls: InboundPollTable;
}

/** Scheduled reconciliation per destination (reconcile/schedule.ts): its lease and the last run's outcome. */
export interface ReconciliationsTable {
  destination: string;
  lease_owner: string | null;
  lease_until: number | null;
  /** When the last run started and finished (ms); a run is due `every` after the last start. */
  started_at: number | null;
  finished_at: number | null;
  /** The last finished run's counts per kind (JSON). */
  counts: string | null;
  /** Why the last run failed, if it did (no personal data: errors are redacted). */
  error: string | null;
}

/** Destination webhooks (two-way sync): stored before the answer, worked off with retries (engine/inbound-work.ts). */
export interface InboundTable {
  id: Generated<number>;
  destination: string;
  /** The delivery's own id (monday's triggerUuid) or a digest of the body: a redelivery is stored once. */
  dedupe_key: string;
  /** The body as it arrived, sealed (pii/sealed.ts); null once done. */
  body: string | null;
  correlation_id: string;
  received_at: number;
  /** pending | done | dead */
  state: string;
  due_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  attempts: Generated<number>;
  last_error: string | null;
  attempt_log: string | null;
}

/** Polling a destination for its changes (inbound.poll): its cursor, when the next poll is due, who polls it. */
export interface InboundPollTable {
  destination: string;
  /** Where the next poll starts, in the connector's terms; null before the first poll. */
  cursor: string | null;
  due_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  polled_at: number | null;
  last_error: string | null;
}

/** Per field both sides write: what each holds (digests) and when each changed (engine/field-state.ts). */
export interface FieldStateTable {
  destination: string;
  record_type: string;
  resource_id: string;
  field: string;
  ct: string | null;
  ct_at: number;
  dest: string | null;
  dest_at: number;
  dest_seen_at: number;
  dest_seen_by_us: number;
  agreed_at: number;
}

/**
 * Accepted request bodies not yet routed: an append-only log, in arrival order. A row is one ingest request (or
 * one document of `ctbridge ingest`) exactly as it arrived; the router normalises it again, so what is committed
 * before the acknowledgement is only the bytes and what is needed to read them the same way.
 */
export interface InboxTable {
  seq: Generated<number>;
  /** The JSON body (UTF-8) as it arrived, sealed in place (pii/sealed.ts); as is in rows written before sealing. */
  body: Uint8Array;
  /** What opens `body` (version, salt, nonce, tag); null for a row written before sealing. */
  seal: ColumnType<Uint8Array | null, Uint8Array | null | undefined, Uint8Array | null>;
  /** The transport headers normalisation reads (see ingest/normalize.ts transportHeaders), as JSON, or null. */
  transport: string | null;
  /** The sender's X-Correlation-Id for every notification in the body; otherwise each gets its own. */
  correlation_id: string | null;
  /** How many items (notifications, unrecognised parts, notices) the body holds: sizes the router's batches. */
  items: number;
  received_at: number;
}

/**
 * One row (see store/inbox.ts): the highest inbox seq the router has routed, for an inbox in a database of its
 * own; how far it routed a body too big for one transaction; and the attempts on the head it recorded.
 */
export interface RouterStateTable {
  id: number;
  routed_seq: number;
  /** The body being routed a slice at a time (0: none), and how many of its items are routed. */
  slice_seq: number;
  slice_done: number;
  /** The head an attempt was recorded on (0: none), attempts started and not committed, the last error. */
  attempt_seq: number;
  attempts: number;
  attempt_error: string | null;
}

/** Dedupe memory: every notification key ever routed. */
export interface SeenTable {
  dedupe_key: string;
  received_at: number;
}

/**
 * Record sync state, one row per (destination, record type, commercetools resource): the work-queue entry
 * (dirty_seq > processed_seq means dirty) and the snapshot of what was last sent.
 */
export interface RecordsTable {
  destination: string;
  record_type: string;
  resource_id: string;
  resource_type: string;
  /** Bumped every time a notification marks the key dirty. */
  dirty_seq: number;
  /** The dirty_seq a worker had claimed when it last finished the key. */
  processed_seq: Generated<number>;
  /** When the key may next be claimed (backoff). */
  due_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  /** Highest resource version any notification has announced. */
  seen_version: number | null;
  /** Version at which the resource was deleted, when a deletion was announced. */
  deleted_version: number | null;
  /** The freshest full resource a notification carried (JSON, sealed: pii/sealed.ts), and its version. */
  carried_version: number | null;
  carried_resource: string | null;
  /**
   * 1 when the state must be read again even if no newer version was announced: a notification without a
   * version, or a replayed dead letter. Otherwise a key whose announced versions are all synced needs no read.
   * 2: a forced resend reconciliation asked for (engine/record-sync.ts FORCED_RESEND).
   */
  refresh: Generated<number>;
  /** Version and mapped payload last delivered to the destination. */
  synced_version: number | null;
  snapshot: string | null;
  /** The store (market) of the resource when last sent, for retention. */
  store_key: ColumnType<string | null, string | null | undefined, string | null>;
  /** When the snapshot was written (the last send), for retention. */
  synced_at: ColumnType<number | null, number | null | undefined, number | null>;
  /** 1 when an attempt may have reached the destination without its outcome being recorded (crash, timeout). */
  unconfirmed: Generated<number>;
  /** True once the destination acknowledged a delete. */
  destination_deleted: Generated<number>;
  destination_id: string | null;
  attempts: Generated<number>;
  first_failed_at: number | null;
  last_error: string | null;
  attempt_log: string | null;
  correlation_id: string;
  /** When the key became dirty after last being clean: the start of end-to-end lag. */
  dirtied_at: number;
  /** When the change happened in commercetools, for end-to-end lag; earliest pending change. */
  occurred_at: number | null;
  /** Bumped by every claim: the order of the key's sends (the http envelope's `sequence`), never decreasing. */
  send_seq: Generated<number>;
  /** The `when:` target (JSON) the record was last sent to, null for the destination's default; deletes go there. */
  sent_target: ColumnType<string | null, string | null | undefined, string | null>;
  /** 1 while the key's pending work is only a backfill's: claimed after every live key (backfill/). */
  background: ColumnType<number, number | undefined, number>;
}

/** Event deliveries waiting, in progress or dead-lettered; a row is removed once delivered. */
export interface EventsTable {
  id: Generated<number>;
  destination: string;
  event_type: string;
  dedupe_key: string;
  source_type: string;
  resource_type: string | null;
  resource_id: string | null;
  /** The source notification payload, as JSON, sealed (pii/sealed.ts; rows written before sealing hold it as is). */
  payload: string;
  correlation_id: string;
  occurred_at: number | null;
  created_at: number;
  due_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  attempts: Generated<number>;
  first_failed_at: number | null;
  last_error: string | null;
  attempt_log: string | null;
  /**
   * 0 queued; 1 while the delivery sits in dead letters (its payload kept sealed until a replay sends it); 2
   * (EVENT_SETTLING) delivered, kept until `due_at` because the destination may still refuse it (event-queue.ts).
   */
  dead: Generated<number>;
}

export interface DeadLettersTable {
  id: Generated<number>;
  destination: string | null;
  /** record | event | quarantine */
  kind: string;
  /** Record type or event type. */
  item_type: string | null;
  resource_id: string | null;
  /** For events: the source dedupe key, so a replay re-creates the same delivery. */
  dedupe_key: string | null;
  correlation_id: string;
  reason: string;
  last_error: string | null;
  attempts: number;
  attempt_log: string | null;
  /** Redacted payload. */
  payload: string | null;
  created_at: number;
  replayed_at: number | null;
}

/** Transport control messages that need a human (SNS subscription confirmations). */
export interface TransportNoticesTable {
  id: Generated<number>;
  kind: string;
  detail: string;
  received_at: number;
}

/** A destination's rate limit across processes (engine/rate-limiter.ts): GCRA state and a 429 pause. */
export interface RateLimitsTable {
  destination: string;
  /** When the next call may go out, ms since epoch; reservations move it on. */
  theoretical_arrival: number;
  paused_until: number;
}

/** Keys ctbridge generated for itself, by name (see pii/secrets.ts). */
export interface StoreSecretsTable {
  name: string;
  value: string;
}

/** The token vault (pii/vault.ts): what a token stands for, encrypted. */
export interface VaultTokensTable {
  token: string;
  /** HMAC of the value: the same value gets the same token. */
  blind_index: string;
  /** Which configured vault key encrypted it (pii.vault.keys). */
  key_id: string;
  /** base64 of nonce ‖ AES-256-GCM ciphertext ‖ tag. */
  ciphertext: string;
  /** The customer whose data first tokenized to it (vault_token_owners has them all, for erasure). */
  subject: string | null;
  created_at: number;
}

/** Every customer whose data tokenized to a token: erasure removes one owner, the token goes with the last. */
export interface VaultTokenOwnersTable {
  token: string;
  /** A customer id. */
  subject: string;
}

/** One change ctbridge made or tried to make: which record, which fields (names only), the outcome. */
export interface AuditLogTable {
  id: Generated<number>;
  at: number;
  /** record.upsert, record.delete, event.deliver, identity.merge, erasure… */
  action: string;
  destination: string | null;
  /** Record type or event type. */
  item_type: string | null;
  resource_id: string | null;
  version: number | null;
  /** JSON list of field names. */
  fields: string | null;
  correlation_id: string | null;
  /** ok, retry, dead-lettered, blocked */
  outcome: string;
  /** Why, for failures (redacted). */
  detail: string | null;
}

/** A resource to forget (engine/erasure.ts), until carried out. */
export interface ErasureRequestsTable {
  id: Generated<number>;
  /** The commercetools resource type: customer, or order, cart, payment… (anything deleted with dataErasure). */
  resource_type: Generated<string>;
  resource_id: string;
  correlation_id: string;
  requested_at: number;
  /**
   * What asked for it: the notification type (ResourceDeleted, or a *Deleted Message carrying dataErasure), or cli
   * (`ctbridge erase`); rows written before resource types were kept say message (a CustomerDeleted).
   */
  source: string;
}

/** A person at one destination (identity/identities.ts). */
export interface IdentitiesTable {
  destination: string;
  /** customer:<id>, or guest:<store key>:<email digest> */
  person: string;
  kind: 'customer' | 'guest';
  /** The store of a store-scoped customer or of a guest's orders; '' for a global customer. */
  store_key: string;
  /** Keyed digest of the normalised email (never the email). */
  email_digest: string | null;
  destination_id: string | null;
  /** After a guest was merged into a registered customer: the customer's person key. */
  merged_into: string | null;
  updated_at: number;
}

/**
 * The second each event was sent at, per destination and scope (for Intercom: event name and contact), for
 * destinations that deduplicate events on a timestamp in seconds (store/event-seconds.ts): two events of one
 * scope never share a second, and a redelivered event keeps its own.
 */
export interface EventSecondsTable {
  destination: string;
  /** What the destination deduplicates within (Intercom: the event name and the person, customer:<id> or guest:…). */
  scope: string;
  /** Unix seconds. */
  second: number;
  /** The event's idempotency key (its source message, which may be several events: unique within the scope). */
  event_key: string;
  /** The person the event is about, so an erasure removes their rows. */
  person: string | null;
  claimed_at: number;
}

/**
 * What a connector keeps between sends, per destination (destinations/types.ts ConnectorState): Ometria's consent
 * last sent per contact and channel, and the records waiting for its asynchronous validation. Values are JSON text.
 */
export interface ConnectorStateTable {
  destination: string;
  key: string;
  value: string;
  /** The customer the value is about, when it is about one (an erasure deletes it). */
  subject: string | null;
  updated_at: number;
}

/**
 * The bodies of each call to a destination whose payloadLog is enabled (store/payload-log.ts), one row per item
 * the call was made for: personal values as the destination's PII policy lets them leave (passed ones masked),
 * never a secret or a request header. Kept payloadLog.retentionDays, gone with an erasure of their resource.
 */
export interface PayloadLogTable {
  id: Generated<number>;
  destination: string;
  at: number;
  correlation_id: string | null;
  /** record, event or merge; null for a call made for no item (a token request at start-up). */
  kind: string | null;
  /** The record or event mapping's name. */
  item_type: string | null;
  resource_id: string | null;
  method: string;
  /** Without credentials or query values that could be personal (observability/redact.ts redactUrl). */
  url: string;
  /** null when there was no answer (`error` says why). */
  status: number | null;
  duration_ms: number;
  request_body: string | null;
  response_body: string | null;
  error: string | null;
}

/** Agent actions under an idempotency key (src/actions/requests.ts). JSON columns are text. */
export interface ActionRequestsTable {
  id: string;
  client: string;
  idempotency_key: string;
  fingerprint: string;
  kind: string;
  order_id: string;
  role: string;
  /** in-progress | pending | done | refused | rejected */
  status: string;
  request: string;
  intent: string | null;
  http_status: number | null;
  answer: string | null;
  result: string | null;
  lease_until: ColumnType<number | null, number | null | undefined, number | null>;
  decided_by: string | null;
  correlation_id: string;
  created_at: ColumnType<number, number, number>;
  updated_at: ColumnType<number, number, number>;
}

/**
 * A backfill (backfill/): the destination and record types it reads from commercetools, its filters, where it got
 * to (`cursor`, JSON: the index of the record type being read and the last id read), its counts and its lease.
 */
export interface BackfillsTable {
  id: string;
  destination: string;
  /** JSON array of record types, in reading order. */
  record_types: string;
  since: number | null;
  where_predicate: string | null;
  store_key: string | null;
  /** What makes two backfills the same (destination, types, filters): one running per scope. */
  scope: string;
  state: 'running' | 'done' | 'cancelled' | 'failed';
  cursor: string;
  read: number;
  queued: number;
  error: string | null;
  created_at: number;
  /** When the last page was read (its keys may still be in the queue). */
  read_done_at: number | null;
  finished_at: number | null;
  lease_owner: string | null;
  lease_until: number | null;
}

/** Scheduled syncs (backfill/scheduled-sync.ts): per destination and record type, how far polling got, and its lease. */
export interface ScheduledSyncsTable {
  destination: string;
  record_type: string;
  /** The schedule as configured (`every 5m`, `cron 0 3 * * *`): when it changes, the next run is computed again. */
  schedule: string;
  /** When the last complete poll started (ctbridge's clock): the next reads what was modified since (minus the overlap). Null before the first. */
  watermark: number | null;
  /** The poll in progress: when it started, and the last id its pages marked (null: none yet). */
  run_started_at: number | null;
  cursor: string | null;
  /** Resources the poll in progress has marked so far. */
  run_found: number;
  /** The createdAt (ms) of the last deletion Message worked off. */
  deletions_watermark: number | null;
  /** detected | not-detectable | null (not known yet), and why not. */
  deletions: string | null;
  deletions_reason: string | null;
  last_run_at: number | null;
  last_found: number;
  last_deleted: number;
  next_run_at: number;
  last_error: string | null;
  lease_owner: string | null;
  lease_until: number | null;
}
