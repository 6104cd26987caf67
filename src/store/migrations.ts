// Schema migrations for both stores, in code so they ship with the binary. Each migration is written once with
// Kysely's schema builder; the few type differences between SQLite and PostgreSQL go through `t`.
import { Migrator, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { Dialect } from './schema.ts';

function migrations(dialect: Dialect, layout: Layout): Record<string, Migration> {
  const autoId = (table: ReturnType<Kysely<unknown>['schema']['createTable']>, name = 'id') =>
    dialect === 'postgres'
      ? table.addColumn(name, 'bigserial', (c) => c.primaryKey())
      : table.addColumn(name, 'integer', (c) => c.primaryKey().autoIncrement());
  return {
    '0001_engine': {
      async up(db: Kysely<unknown>) {
        // The inbox is an append-only log: acknowledging a request costs one sequential insert, whatever the
        // number of destinations. Dedupe and fan-out happen when the router moves rows out of it.
        await autoId(db.schema.createTable('inbox'), 'seq')
          .addColumn('dedupe_key', 'text', (c) => c.notNull())
          .addColumn('notification', 'text', (c) => c.notNull())
          .addColumn('carried_key', 'text')
          .addColumn('correlation_id', 'text', (c) => c.notNull())
          .addColumn('received_at', 'bigint', (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('seen')
          .addColumn('dedupe_key', 'text', (c) => c.primaryKey())
          .addColumn('received_at', 'bigint', (c) => c.notNull())
          .$call((t) => (dialect === 'sqlite' ? t.modifyEnd(sql`without rowid`) : t))
          .execute();
        await db.schema.createIndex('seen_received_at').on('seen').column('received_at').execute();

        await db.schema
          .createTable('records')
          .addColumn('destination', 'text', (c) => c.notNull())
          .addColumn('record_type', 'text', (c) => c.notNull())
          .addColumn('resource_id', 'text', (c) => c.notNull())
          .addColumn('resource_type', 'text', (c) => c.notNull())
          .addColumn('dirty_seq', 'bigint', (c) => c.notNull())
          .addColumn('processed_seq', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('due_at', 'bigint', (c) => c.notNull())
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'bigint')
          .addColumn('seen_version', 'bigint')
          .addColumn('deleted_version', 'bigint')
          .addColumn('carried_version', 'bigint')
          .addColumn('carried_resource', 'text')
          .addColumn('refresh', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('synced_version', 'bigint')
          .addColumn('snapshot', 'text')
          .addColumn('unconfirmed', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('destination_deleted', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('destination_id', 'text')
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('first_failed_at', 'bigint')
          .addColumn('last_error', 'text')
          .addColumn('attempt_log', 'text')
          .addColumn('correlation_id', 'text', (c) => c.notNull())
          .addColumn('dirtied_at', 'bigint', (c) => c.notNull())
          .addColumn('occurred_at', 'bigint')
          .addPrimaryKeyConstraint('records_pk', ['destination', 'record_type', 'resource_id'])
          .execute();
        // Only dirty keys are ever claimed; the partial index keeps the claim query independent of table size.
        await db.schema
          .createIndex('records_dirty')
          .on('records')
          .columns(['destination', 'due_at'])
          .where(sql.ref('dirty_seq'), '>', sql.ref('processed_seq'))
          .execute();

        await autoId(db.schema.createTable('events'))
          .addColumn('destination', 'text', (c) => c.notNull())
          .addColumn('event_type', 'text', (c) => c.notNull())
          .addColumn('dedupe_key', 'text', (c) => c.notNull())
          .addColumn('source_type', 'text', (c) => c.notNull())
          .addColumn('resource_type', 'text')
          .addColumn('resource_id', 'text')
          .addColumn('payload', 'text', (c) => c.notNull())
          .addColumn('correlation_id', 'text', (c) => c.notNull())
          .addColumn('occurred_at', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('due_at', 'bigint', (c) => c.notNull())
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'bigint')
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('first_failed_at', 'bigint')
          .addColumn('last_error', 'text')
          .addColumn('attempt_log', 'text')
          .addColumn('dead', 'integer', (c) => c.notNull().defaultTo(0))
          .addUniqueConstraint('events_once', ['destination', 'event_type', 'dedupe_key'])
          .execute();
        await db.schema.createIndex('events_due').on('events').columns(['destination', 'due_at']).execute();
        await db.schema.createIndex('events_resource').on('events').columns(['destination', 'resource_id', 'id']).execute();

        await autoId(db.schema.createTable('dead_letters'))
          .addColumn('destination', 'text')
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('item_type', 'text')
          .addColumn('resource_id', 'text')
          .addColumn('dedupe_key', 'text')
          .addColumn('correlation_id', 'text', (c) => c.notNull())
          .addColumn('reason', 'text', (c) => c.notNull())
          .addColumn('last_error', 'text')
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('attempt_log', 'text')
          .addColumn('payload', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('replayed_at', 'bigint')
          .execute();
        await db.schema.createIndex('dead_letters_destination').on('dead_letters').columns(['destination', 'id']).execute();

        await autoId(db.schema.createTable('transport_notices'))
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('detail', 'text', (c) => c.notNull())
          .addColumn('received_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0002_rate_limits': {
      async up(db: Kysely<unknown>) {
        // One row per destination: the rate limit's state, shared by every process using the store.
        await db.schema
          .createTable('rate_limits')
          .addColumn('destination', 'text', (c) => c.primaryKey())
          .addColumn('theoretical_arrival', 'bigint', (c) => c.notNull())
          .addColumn('paused_until', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0003_inbox_bodies': {
      async up(db: Kysely<unknown>) {
        // The inbox now keeps each accepted request body as it arrived, one row per request, and the router
        // normalises it: acknowledging costs one insert per request instead of one encoded row per notification.
        // Beside an SQLite file it lives in a file of its own (inboxMigrations). Rows of the old shape cannot be
        // turned back into request bodies, so an inbox still holding some stops the upgrade before anything changes.
        const { rows } = await sql<{ n: number | string }>`select count(*) as n from inbox`.execute(db);
        const waiting = Number(rows[0]?.n ?? 0);
        if (waiting > 0) {
          throw new Error(
            `the inbox holds ${waiting} notification(s) accepted by an older ctbridge and not yet routed; run that version until \`ctbridge status\` shows an empty inbox, then upgrade`,
          );
        }
        await db.schema.dropTable('inbox').execute();
        if (layout.inboxInMain) await createInboxTable(db, dialect);
        // How far the router has taken a separate inbox (it cannot delete there in the transaction that routes).
        await db.schema.createTable('router_state').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('routed_seq', 'bigint', (c) => c.notNull()).execute();
        await db.insertInto('router_state' as never).values({ id: 1, routed_seq: 0 }).execute();
      },
    },
    '0004_pii_and_audit': {
      async up(db: Kysely<unknown>) {
        // Keys ctbridge generates for itself (the snapshot digest key when no pii.hashKey is configured).
        await db.schema.createTable('store_secrets').addColumn('name', 'text', (c) => c.primaryKey()).addColumn('value', 'text', (c) => c.notNull()).execute();

        // The token vault: a value's AES-256-GCM ciphertext under a key id, found again by its blind index.
        await db.schema
          .createTable('vault_tokens')
          .addColumn('token', 'text', (c) => c.primaryKey())
          .addColumn('blind_index', 'text', (c) => c.notNull().unique())
          .addColumn('key_id', 'text', (c) => c.notNull())
          .addColumn('ciphertext', 'text', (c) => c.notNull())
          .addColumn('subject', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('vault_tokens_subject').on('vault_tokens').column('subject').execute();
        await db.schema.createIndex('vault_tokens_key').on('vault_tokens').column('key_id').execute();

        // Every change ctbridge made (or failed to make) in a destination or in commercetools: names, never values.
        await autoId(db.schema.createTable('audit_log'))
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('destination', 'text')
          .addColumn('item_type', 'text')
          .addColumn('resource_id', 'text')
          .addColumn('version', 'bigint')
          .addColumn('fields', 'text')
          .addColumn('correlation_id', 'text')
          .addColumn('outcome', 'text', (c) => c.notNull())
          .addColumn('detail', 'text')
          .execute();
        await db.schema.createIndex('audit_log_resource').on('audit_log').columns(['resource_id', 'id']).execute();
        await db.schema.createIndex('audit_log_at').on('audit_log').column('at').execute();

        // One person per destination: a commercetools customer, or a guest known by the digest of their email;
        // the destination's id for them once it returned one; and, after a merge, who they became.
        await db.schema
          .createTable('identities')
          .addColumn('destination', 'text', (c) => c.notNull())
          .addColumn('person', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('store_key', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('email_digest', 'text')
          .addColumn('destination_id', 'text')
          .addColumn('merged_into', 'text')
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('identities_pk', ['destination', 'person'])
          .execute();
        await db.schema.createIndex('identities_email').on('identities').columns(['destination', 'email_digest']).execute();

        // For retention: which store (market) a record belongs to, and when its snapshot was written.
        await db.schema.alterTable('records').addColumn('store_key', 'text').execute();
        await db.schema.alterTable('records').addColumn('synced_at', 'bigint').execute();

        // Erasure requests (CustomerDeleted with dataErasure, `ctbridge erase`) until carried out.
        await autoId(db.schema.createTable('erasure_requests'))
          .addColumn('customer_id', 'text', (c) => c.notNull())
          .addColumn('correlation_id', 'text', (c) => c.notNull())
          .addColumn('requested_at', 'bigint', (c) => c.notNull())
          .addColumn('source', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0005_h11_engine': {
      async up(db: Kysely<unknown>) {
        // Who a vault token belongs to: every customer whose data tokenized to it (two customers can share an
        // email), so erasing one removes only their ownership, and the token goes with its last owner.
        await db.schema
          .createTable('vault_token_owners')
          .addColumn('token', 'text', (c) => c.notNull())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('vault_token_owners_pk', ['token', 'subject'])
          .execute();
        await db.schema.createIndex('vault_token_owners_subject').on('vault_token_owners').column('subject').execute();
        await sql`insert into vault_token_owners (token, subject) select token, subject from vault_tokens where subject is not null`.execute(db);
        // A record's send counter (the http envelope's `sequence`: bumped by every claim, so it only grows), and
        // the `when:` target it was last sent to, where its delete must go too.
        await db.schema.alterTable('records').addColumn('send_seq', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.alterTable('records').addColumn('sent_target', 'text').execute();
        // The guests merged into a customer, whose orders count in the customer's `$orders`.
        await db.schema.createIndex('identities_merged').on('identities').columns(['destination', 'merged_into']).execute();
      },
    },
    '0006_h11_ingest_router_state': {
      async up(db: Kysely<unknown>) {
        // A body too big for one routing transaction is routed a slice at a time; a head whose routing keeps
        // failing (or stopping the process) is quarantined after a bounded number of recorded attempts.
        // (Inbox bodies, event messages and carried resources are sealed from now on; rows written before keep
        // working as they are: a sealed body has a seal beside it, sealed text a prefix.)
        await db.schema.alterTable('router_state').addColumn('slice_seq', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.alterTable('router_state').addColumn('slice_done', 'integer', (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.alterTable('router_state').addColumn('attempt_seq', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.alterTable('router_state').addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.alterTable('router_state').addColumn('attempt_error', 'text').execute();
        if (layout.inboxInMain) await addInboxSeal(db, dialect);
      },
    },
    '0007_i13_erasure_of_resources': {
      async up(db: Kysely<unknown>) {
        // An erasure is of a resource, not only of a customer: commercetools deletes orders, carts, payments,
        // shopping lists… with dataErasure too, and says so in their ResourceDeleted notifications.
        await db.schema.alterTable('erasure_requests').renameColumn('customer_id', 'resource_id').execute();
        await db.schema.alterTable('erasure_requests').addColumn('resource_type', 'text', (c) => c.notNull().defaultTo('customer')).execute();
      },
    },
    '0008_i13_event_seconds': {
      async up(db: Kysely<unknown>) {
        // Intercom drops a data event with the same name, contact and created_at (seconds) as one it has: each
        // event's second is claimed here, unique per scope, and a redelivery finds the one it had.
        await db.schema
          .createTable('event_seconds')
          .addColumn('destination', 'text', (c) => c.notNull())
          .addColumn('scope', 'text', (c) => c.notNull())
          .addColumn('second', 'bigint', (c) => c.notNull())
          .addColumn('event_key', 'text', (c) => c.notNull())
          .addColumn('person', 'text')
          .addColumn('claimed_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('event_seconds_pk', ['destination', 'scope', 'second'])
          .execute();
        await db.schema.createIndex('event_seconds_event').unique().on('event_seconds').columns(['destination', 'scope', 'event_key']).execute();
        await db.schema.createIndex('event_seconds_person').on('event_seconds').column('person').execute();
        await db.schema.createIndex('event_seconds_claimed_at').on('event_seconds').column('claimed_at').execute();
      },
    },
    '0009_i14_connector_state': {
      async up(db: Kysely<unknown>) {
        // What a connector keeps between sends (Ometria: the consent last sent per contact, the records waiting for
        // asynchronous validation), shared by every process of the store.
        await db.schema
          .createTable('connector_state')
          .addColumn('destination', 'text', (c) => c.notNull())
          .addColumn('key', 'text', (c) => c.notNull())
          .addColumn('value', 'text', (c) => c.notNull())
          .addColumn('subject', 'text')
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('connector_state_pk', ['destination', 'key'])
          .execute();
        await db.schema.createIndex('connector_state_subject').on('connector_state').column('subject').execute();
      },
    },
    '0010_i16_backfills': {
      async up(db: Kysely<unknown>) {
        // Backfills (backfill/): what each reads, its cursor (resumable after a crash), counts and lease.
        await db.schema
          .createTable('backfills')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('destination', 'text', (c) => c.notNull())
          .addColumn('record_types', 'text', (c) => c.notNull())
          .addColumn('since', 'bigint')
          .addColumn('where_predicate', 'text')
          .addColumn('store_key', 'text')
          .addColumn('scope', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('cursor', 'text', (c) => c.notNull())
          .addColumn('read', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('queued', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('error', 'text')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('read_done_at', 'bigint')
          .addColumn('finished_at', 'bigint')
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'bigint')
          .execute();
        // One running backfill per scope, whichever process asks (the store refuses the second).
        await db.schema.createIndex('backfills_running_scope').unique().on('backfills').column('scope').where(sql.ref('state'), '=', 'running').execute();
        await db.schema.createIndex('backfills_created').on('backfills').column('created_at').execute();
        // Live work first: a key whose pending work only a backfill asked for is claimed after every live one.
        await db.schema.alterTable('records').addColumn('background', 'integer', (c) => c.notNull().defaultTo(0)).execute();
        await db.schema.dropIndex('records_dirty').execute();
        await db.schema
          .createIndex('records_dirty')
          .on('records')
          .columns(['destination', 'background', 'due_at'])
          .where(sql.ref('dirty_seq'), '>', sql.ref('processed_seq'))
          .execute();
      },
    },
    '0013_i18_payload_log': {
      async up(db: Kysely<unknown>) {
        // The request and response bodies of each destination call, for destinations with payloadLog enabled
        // (store/payload-log.ts): treated by the PII policy and stripped of secrets before they are written.
        await (dialect === 'postgres'
          ? db.schema.createTable('payload_log').addColumn('id', 'bigserial', (c) => c.primaryKey())
          : db.schema.createTable('payload_log').addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement()))
          .addColumn('destination', 'text', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('correlation_id', 'text')
          .addColumn('kind', 'text')
          .addColumn('item_type', 'text')
          .addColumn('resource_id', 'text')
          .addColumn('method', 'text', (c) => c.notNull())
          .addColumn('url', 'text', (c) => c.notNull())
          .addColumn('status', 'integer')
          .addColumn('duration_ms', 'integer', (c) => c.notNull())
          .addColumn('request_body', 'text')
          .addColumn('response_body', 'text')
          .addColumn('error', 'text')
          .execute();
        await db.schema.createIndex('payload_log_resource').on('payload_log').columns(['resource_id', 'at']).execute();
        await db.schema.createIndex('payload_log_at').on('payload_log').columns(['destination', 'at']).execute();
      },
    },
    '0014_i19_actions': {
      async up(db: Kysely<unknown>) {
        // Agent actions (src/actions): one row per call under an idempotency key — in progress (holding the key
        // until lease_until), pending approval, or finished with the answer a retry gets again — committed with
        // the outcome, and what was about to be written (intent), so a retry after a crash finds out whether it was.
        await db.schema
          .createTable('action_requests')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('client', 'text', (c) => c.notNull())
          .addColumn('idempotency_key', 'text', (c) => c.notNull())
          .addColumn('fingerprint', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('order_id', 'text', (c) => c.notNull())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('request', 'text', (c) => c.notNull())
          .addColumn('intent', 'text')
          .addColumn('http_status', 'integer')
          .addColumn('answer', 'text')
          .addColumn('result', 'text')
          .addColumn('lease_until', 'bigint')
          .addColumn('decided_by', 'text')
          .addColumn('correlation_id', 'text', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('action_requests_key').unique().on('action_requests').columns(['client', 'idempotency_key']).execute();
        await db.schema.createIndex('action_requests_order').on('action_requests').columns(['order_id', 'created_at']).execute();
      },
    },
    '0015_i16_scheduled_sync': {
      async up(db: Kysely<unknown>) {
        // Scheduled syncs (backfill/scheduled-sync.ts): each polled destination and record type, its watermark
        // (advanced only once a poll's marks are committed), the poll in progress (resumed after a crash) and its
        // lease (one poller across processes).
        await db.schema
          .createTable('scheduled_syncs')
          .addColumn('destination', 'text', (c) => c.notNull())
          .addColumn('record_type', 'text', (c) => c.notNull())
          .addColumn('schedule', 'text', (c) => c.notNull())
          .addColumn('watermark', 'bigint')
          .addColumn('run_started_at', 'bigint')
          .addColumn('cursor', 'text')
          .addColumn('run_found', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('deletions_watermark', 'bigint')
          .addColumn('deletions', 'text')
          .addColumn('deletions_reason', 'text')
          .addColumn('last_run_at', 'bigint')
          .addColumn('last_found', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('last_deleted', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('next_run_at', 'bigint', (c) => c.notNull())
          .addColumn('last_error', 'text')
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'bigint')
          .addPrimaryKeyConstraint('scheduled_syncs_pk', ['destination', 'record_type'])
          .execute();
      },
    },
    '0011_i17_inbound': {
      async up(db: Kysely<unknown>) {
        // Destination webhooks (two-way sync), stored before they are answered and worked off like the queues;
        // a row stays (without its body) once done, as the memory that deduplicates a redelivery.
        await autoId(db.schema.createTable('inbound'))
          .addColumn('destination', 'text', (c) => c.notNull())
          .addColumn('dedupe_key', 'text', (c) => c.notNull())
          .addColumn('body', 'text')
          .addColumn('correlation_id', 'text', (c) => c.notNull())
          .addColumn('received_at', 'bigint', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('due_at', 'bigint', (c) => c.notNull())
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'bigint')
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('last_error', 'text')
          .addColumn('attempt_log', 'text')
          .addUniqueConstraint('inbound_dedupe', ['destination', 'dedupe_key'])
          .execute();
        await db.schema.createIndex('inbound_due').on('inbound').columns(['destination', 'state', 'due_at']).execute();
        // Per field both sides write: the digests each side holds and when each changed (engine/field-state.ts).
        await db.schema
          .createTable('field_state')
          .addColumn('destination', 'text', (c) => c.notNull())
          .addColumn('record_type', 'text', (c) => c.notNull())
          .addColumn('resource_id', 'text', (c) => c.notNull())
          .addColumn('field', 'text', (c) => c.notNull())
          .addColumn('ct', 'text')
          .addColumn('ct_at', 'bigint', (c) => c.notNull())
          .addColumn('dest', 'text')
          .addColumn('dest_at', 'bigint', (c) => c.notNull())
          .addColumn('dest_seen_at', 'bigint', (c) => c.notNull())
          .addColumn('dest_seen_by_us', 'integer', (c) => c.notNull())
          .addColumn('agreed_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('field_state_pk', ['destination', 'record_type', 'resource_id', 'field'])
          .execute();
      },
    },
    '0016_i16_reconciliations': {
      async up(db: Kysely<unknown>) {
        // Scheduled reconciliation (reconcile/): per destination, who runs it now (a lease, so one process of
        // several does) and what the last run found, so a restart neither repeats a run early nor forgets its counts.
        await db.schema
          .createTable('reconciliations')
          .addColumn('destination', 'text', (c) => c.primaryKey())
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'bigint')
          .addColumn('started_at', 'bigint')
          .addColumn('finished_at', 'bigint')
          .addColumn('counts', 'text')
          .addColumn('error', 'text')
          .execute();
      },
    },
    '0017_i17_inbound_polls': {
      async up(db: Kysely<unknown>) {
        // Polling a destination that cannot push (inbound.poll): where the next poll starts, when it is due, and
        // the lease of the process polling it, so processes sharing a store poll one at a time.
        await db.schema
          .createTable('inbound_polls')
          .addColumn('destination', 'text', (c) => c.primaryKey())
          .addColumn('cursor', 'text')
          .addColumn('due_at', 'bigint', (c) => c.notNull())
          .addColumn('lease_owner', 'text')
          .addColumn('lease_until', 'bigint')
          .addColumn('polled_at', 'bigint')
          .addColumn('last_error', 'text')
          .execute();
        // Done webhooks are purged by age after the dedupe window.
        await db.schema.createIndex('inbound_done').on('inbound').columns(['state', 'received_at']).execute();
      },
    },
    '0020_events_claim': {
      async up(db: Kysely<unknown>) {
        // Delivered events kept until the destination can no longer refuse them (dead = 2, store/event-queue.ts)
        // are due for deletion once that time passes: the claim's index of due events leaves them (and dead ones)
        // out by its `dead` column, so a claim never reads past them, and their deletion finds them the same way.
        await db.schema.createIndex('events_claim').on('events').columns(['destination', 'dead', 'due_at']).execute();
        await db.schema.dropIndex('events_due').execute();
      },
    },
    '0021_actions_sweep': {
      async up(db: Kysely<unknown>) {
        // The actions sweeper (actions/sweeper.ts) looks for calls whose lease ran out, every half lease, in a table
        // that keeps every request ever made: only the few in progress are indexed.
        await db.schema.createIndex('action_requests_expired').on('action_requests').column('lease_until').where(sql.ref('status'), '=', 'in-progress').execute();
      },
    },
  };
}

/** The migrations of an inbox kept in a file of its own. */
function inboxMigrations(dialect: Dialect): Record<string, Migration> {
  return {
    '0001_inbox': { up: (db: Kysely<unknown>) => createInboxTable(db, dialect) },
    '0002_h11_ingest_inbox_seal': { up: (db: Kysely<unknown>) => addInboxSeal(db, dialect) },
  };
}

/** Bodies are sealed in place from now on; what opens one is kept beside it (null: a body stored before). */
async function addInboxSeal(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await db.schema.alterTable('inbox').addColumn('seal', dialect === 'postgres' ? 'bytea' : 'blob').execute();
}

async function createInboxTable(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  // AUTOINCREMENT on SQLite: a sequence number is never issued twice, even after the rows are deleted.
  await (dialect === 'postgres'
    ? db.schema.createTable('inbox').addColumn('seq', 'bigserial', (c) => c.primaryKey())
    : db.schema.createTable('inbox').addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement()))
    .addColumn('body', dialect === 'postgres' ? 'bytea' : 'blob', (c) => c.notNull())
    .addColumn('transport', 'text')
    .addColumn('correlation_id', 'text')
    .addColumn('items', 'integer', (c) => c.notNull())
    .addColumn('received_at', 'bigint', (c) => c.notNull())
    .execute();
}

/** Where the inbox is: in the main database, or (beside an SQLite file) in one of its own. */
export interface Layout {
  inboxInMain: boolean;
}

function migrationsFor(part: 'main' | 'inbox', dialect: Dialect, layout: Layout): Record<string, Migration> {
  return part === 'main' ? migrations(dialect, layout) : inboxMigrations(dialect);
}

export function createMigrator(db: Kysely<unknown>, dialect: Dialect, layout: Layout, part: 'main' | 'inbox' = 'main'): Migrator {
  const provider: MigrationProvider = { getMigrations: () => Promise.resolve(migrationsFor(part, dialect, layout)) };
  const table = part === 'main' ? 'ctbridge_migration' : 'ctbridge_inbox_migration';
  return new Migrator({ db, provider, migrationTableName: table, migrationLockTableName: `${table}_lock` });
}

export function migrationNames(dialect: Dialect, layout: Layout, part: 'main' | 'inbox' = 'main'): string[] {
  return Object.keys(migrationsFor(part, dialect, layout));
}
