// Reconciliation of one destination: for every record of its record types, commercetools' current state mapped
// for the destination (read page by page like a backfill, mapped as record sync maps it) against what ctbridge last
// delivered (the snapshot in `records`) and, when the connector can read back, against what the destination holds
// now. Four kinds of difference:
//   missing — in commercetools, never delivered (no snapshot), or delivered but no longer at the destination;
//   stale   — the snapshot is older than commercetools' mapped state (a change no notification brought);
//   extra   — deleted in commercetools, still in the snapshot (and at the destination, when it reads back);
//   drift   — the destination's value of a commercetools-owned field differs from what was delivered.
// Destination-owned and shared fields (ownership) are never stale or drift: the destination may write them. A key
// with sync work pending is counted as pending, not judged: the engine is about to settle it.
//
// Nothing personal leaves here: findings name fields and carry keyed digests of values (the snapshot's digester,
// pii/snapshot.ts), never values. `repair` queues the fixes through the normal record path, page by page as they
// are found: every finding's key is marked dirty for a forced resend (read commercetools again, send the whole
// record whatever the snapshot says, under an idempotency key of its own), so a missing, stale or drifted record is
// sent again whole and an extra one, which commercetools no longer has, goes through the delete path.
import { isDeepStrictEqual } from 'node:util';
import { sql, type Insertable, type Kysely } from 'kysely';
import type { Connector, RecordReadItem, RecordReadOutcome } from '../destinations/types.ts';
import type { Identities } from '../identity/identities.ts';
import { customerIdOf } from '../identity/person.ts';
import type { ReferenceExpander } from '../mapping/references.ts';
import { redactText } from '../observability/redact.ts';
import type { PiiKeys } from '../pii/keys.ts';
import { compareRecordKeys, prepareRecordMarks, type RecordRow } from '../store/record-queue.ts';
import type { Database, Dialect, RecordsTable } from '../store/schema.ts';
import type { PageReader } from '../backfill/reader.ts';
import { customersOrders, FORCED_RESEND, type ResourceFetcher } from '../engine/record-sync.ts';
import { ownershipByRecordType } from '../engine/ownership.ts';
import type { RecordRoute, Routes } from '../engine/routes.ts';

export const FINDING_KINDS = ['missing', 'stale', 'extra', 'drift'] as const;
export type FindingKind = (typeof FINDING_KINDS)[number];

/** One field that differs: keyed digests of the value expected and the one found (null: no value). */
export interface FieldDifference {
  field: string;
  expected: string | null;
  found: string | null;
}

export interface Finding {
  kind: FindingKind;
  recordType: string;
  /** The commercetools id. */
  resourceId: string;
  /** Where the difference is: what ctbridge delivered (its snapshot), or what the destination holds now. */
  at: 'snapshot' | 'destination';
  /** stale: commercetools' value expected, the delivered one found; drift: the delivered one expected, the destination's found. */
  fields: FieldDifference[];
}

export interface ReconcileCounts {
  /** Records compared (in commercetools, plus the extra ones found only in the store). */
  checked: number;
  inSync: number;
  missing: number;
  stale: number;
  extra: number;
  drift: number;
  /** Keys with sync work pending: left to the engine, not judged. */
  pending: number;
  /** Records that could not be compared (a mapping error, a destination read that failed). */
  failed: number;
}

export interface ReconcileReport {
  destination: string;
  recordTypes: string[];
  /** Whether the destination was read back (its connector can, and was given). */
  readBack: boolean;
  startedAt: string;
  finishedAt: string;
  counts: ReconcileCounts;
  /** The findings, at most `maxFindings` of them (the counts are complete). */
  findings: Finding[];
  /** How many findings were left out of the list. */
  findingsOmitted: number;
  /** Why records could not be compared (redacted), at most `maxFindings`. */
  problems: Array<{ recordType: string; resourceId: string; message: string }>;
  /** With repair: the keys queued for a forced resend, and for the delete path. */
  repair?: { resend: number; delete: number; correlationId: string } | undefined;
}

export interface ReconcileDeps {
  db: Kysely<Database>;
  dialect: Dialect;
  routes: Routes;
  reader: PageReader;
  fetcher: ResourceFetcher;
  references: ReferenceExpander;
  identities: Identities;
  pii: () => Promise<PiiKeys>;
  /** The destination's connector, for reading back; without it (or without its readRecords) only snapshots are compared. */
  connector?: Connector | undefined;
  now?: () => number;
}

export interface ReconcileOptions {
  destination: string;
  recordTypes: readonly string[];
  repair?: boolean;
  /** Resources per page (commercetools allows at most 500). */
  pageSize?: number;
  maxFindings?: number;
  /** Names the run in the correlation id of repairs. */
  runId: string;
  /** Told after each page's repairs were queued (wakes the engine's record workers). */
  onQueued?: () => void;
  /** Told after each page, with the counts so far (the command's progress line). */
  onProgress?: (recordType: string, counts: Readonly<ReconcileCounts>) => void;
}

const DEFAULT_PAGE = 500;
const DEFAULT_MAX_FINDINGS = 1000;
/** Records read back from the destination at once. */
const READ_CHUNK = 20;
const CONFIRM_CHUNK = 100;

type Row = Pick<RecordRow, 'resource_id' | 'resource_type' | 'record_type' | 'snapshot' | 'dirty_seq' | 'processed_seq' | 'destination_deleted' | 'unconfirmed' | 'destination_id' | 'sent_target'>;

export async function reconcile(deps: ReconcileDeps, options: ReconcileOptions): Promise<ReconcileReport> {
  const now = deps.now ?? Date.now;
  const startedAt = now();
  const maxFindings = options.maxFindings ?? DEFAULT_MAX_FINDINGS;
  const pageSize = Math.max(1, Math.min(500, options.pageSize ?? DEFAULT_PAGE));
  const keys = await deps.pii();
  const owned = ownershipByRecordType(deps.routes, options.destination);
  const readBack = deps.connector?.readRecords ? deps.connector.readRecords.bind(deps.connector) : undefined;
  const counts: ReconcileCounts = { checked: 0, inSync: 0, missing: 0, stale: 0, extra: 0, drift: 0, pending: 0, failed: 0 };
  const findings: Finding[] = [];
  const problems: ReconcileReport['problems'] = [];
  const correlationId = `reconcile:${options.runId}`;
  const repair = options.repair ? { resend: 0, delete: 0, correlationId } : undefined;
  const marks = prepareRecordMarks(deps.db);
  /** A keyed digest of any value (the snapshot digester applied to it as if personal), for the report. */
  const digest = (value: unknown): string | null => (value === null || value === undefined ? null : String(keys.snapshot({ value }, ALL_PERSONAL).value));

  let found = 0;
  const note = (finding: Finding) => {
    counts[finding.kind] += 1;
    found += 1;
    if (findings.length < maxFindings) findings.push(finding);
  };
  const problem = (recordType: string, resourceId: string, error: unknown) => {
    counts.failed += 1;
    if (problems.length < maxFindings) problems.push({ recordType, resourceId, message: redactText(error instanceof Error ? error.message : String(error)) });
  };

  for (const recordType of options.recordTypes) {
    const route = deps.routes.record(options.destination, recordType);
    if (!route) throw new Error(`destination "${options.destination}" has no record type "${recordType}"`);
    const ownership = owned.get(recordType) ?? {};
    const commercetoolsOwned = (field: string) => !Object.hasOwn(ownership, field);
    let afterId: string | null = null;
    /** The greatest id read so far (code-unit order): the store's rows up to it were either read or are extra. */
    let upTo: string | null = null;
    for (;;) {
      const page = await deps.reader.page({ resourceType: route.resourceType, afterId, since: null, where: null, storeKey: null, limit: pageSize });
      const resources = page.filter((r): r is Record<string, unknown> & { id: string } => typeof r.id === 'string');
      const last = page.length < pageSize;
      const ids = resources.map((r) => r.id);
      const rows = new Map((await rowsOf(deps.db, options.destination, recordType, ids)).map((row) => [row.resource_id, row]));
      const toRepair: Array<{ row: Row | undefined; resourceId: string; remove: boolean }> = [];

      // commercetools' side: each resource mapped as record sync would map it.
      const mapped = await mapPage(deps, route, options.destination, resources, keys);
      const toRead: Array<{ row: Row; item: RecordReadItem; snapshot: Record<string, unknown> }> = [];
      for (const resource of resources) {
        const row = rows.get(resource.id);
        const state = mapped.get(resource.id)!;
        counts.checked += 1;
        if (row && row.dirty_seq > row.processed_seq) {
          counts.pending += 1;
          continue;
        }
        if (state instanceof Error) {
          problem(recordType, resource.id, state);
          continue;
        }
        // A `when:` block leaves it out of this destination.
        if (state === null) {
          counts.inSync += 1;
          continue;
        }
        const snapshot = row?.snapshot ? (JSON.parse(row.snapshot) as Record<string, unknown>) : null;
        if (!row || snapshot === null || row.destination_deleted === 1) {
          note({ kind: 'missing', recordType, resourceId: resource.id, at: 'snapshot', fields: [] });
          toRepair.push({ row, resourceId: resource.id, remove: false });
          continue;
        }
        const next = keys.snapshot(state, route.mapping.personalFields);
        const staleFields = differing(next, snapshot).filter(commercetoolsOwned);
        if (staleFields.length > 0) {
          note({ kind: 'stale', recordType, resourceId: resource.id, at: 'snapshot', fields: staleFields.map((field) => ({ field, expected: digest(next[field]), found: digest(snapshot[field]) })) });
          toRepair.push({ row, resourceId: resource.id, remove: false });
          continue;
        }
        if (readBack) {
          toRead.push({ row, snapshot, item: readItem(row, Object.keys(snapshot).filter(commercetoolsOwned)) });
          continue;
        }
        counts.inSync += 1;
      }

      // The destination's side, for what the snapshots say is there.
      if (readBack) {
        for (let start = 0; start < toRead.length; start += READ_CHUNK) {
          const chunk = toRead.slice(start, start + READ_CHUNK);
          const outcomes = await readBack(chunk.map((c) => c.item));
          chunk.forEach(({ row, snapshot }, index) => {
            const outcome = outcomes[index] as RecordReadOutcome;
            if (outcome.found === 'error') {
              problem(recordType, row.resource_id, outcome.error);
              return;
            }
            if (!outcome.found) {
              note({ kind: 'missing', recordType, resourceId: row.resource_id, at: 'destination', fields: [] });
              toRepair.push({ row, resourceId: row.resource_id, remove: false });
              return;
            }
            const held = keys.snapshot(outcome.fields, route.mapping.personalFields);
            const drifted = Object.keys(held).filter((field) => commercetoolsOwned(field) && Object.hasOwn(snapshot, field) && !isDeepStrictEqual(normal(held[field]), normal(snapshot[field])));
            if (drifted.length === 0) {
              counts.inSync += 1;
              return;
            }
            note({ kind: 'drift', recordType, resourceId: row.resource_id, at: 'destination', fields: drifted.map((field) => ({ field, expected: digest(snapshot[field]), found: digest(held[field]) })) });
            toRepair.push({ row, resourceId: row.resource_id, remove: false });
          });
        }
      }

      // The store's side: delivered records in this stretch of ids that commercetools no longer has.
      const pageMax = ids.reduce<string | null>((max, id) => furthest(max, id), null);
      const to: string | null = last ? null : furthest(upTo, pageMax);
      if (route.onDelete !== 'ignore') {
        const candidates = (await deliveredBetween(deps.db, deps.dialect, options.destination, recordType, upTo, to)).filter((row) => !rows.has(row.resource_id));
        for (const row of await confirmGone(deps.fetcher, route.resourceType, candidates)) {
          counts.checked += 1;
          if (row.dirty_seq > row.processed_seq) {
            counts.pending += 1;
            continue;
          }
          let at: Finding['at'] = 'snapshot';
          if (readBack) {
            const [outcome] = await readBack([readItem(row, [])]);
            if (outcome?.found === true) at = 'destination';
          }
          note({ kind: 'extra', recordType, resourceId: row.resource_id, at, fields: [] });
          toRepair.push({ row, resourceId: row.resource_id, remove: true });
        }
      }
      upTo = to;

      if (repair && toRepair.length > 0) {
        await queueRepairs(deps.db, marks, options.destination, route, toRepair, correlationId, now());
        for (const r of toRepair) repair[r.remove ? 'delete' : 'resend'] += 1;
        options.onQueued?.();
      }
      options.onProgress?.(recordType, counts);
      if (last) break;
      afterId = resources.at(-1)?.id ?? afterId;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  return {
    destination: options.destination,
    recordTypes: [...options.recordTypes],
    readBack: readBack !== undefined,
    startedAt: new Date(startedAt).toISOString(),
    finishedAt: new Date(now()).toISOString(),
    counts,
    findings,
    findingsOmitted: found - findings.length,
    problems,
    ...(repair && { repair }),
  };
}

/** Every field name is "personal" to this set: the digester then digests whatever value it is given. */
const ALL_PERSONAL: ReadonlySet<string> = new Set(['value']);

/** The greater of two ids in code-unit order (null: none). */
function furthest(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  return b !== null && b > a ? b : a;
}

/** Missing and null are the same to a destination. */
const normal = (value: unknown) => (value === undefined ? null : value);

/** Fields whose value differs between two snapshots (either side's fields). */
function differing(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const names = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...names].filter((name) => !isDeepStrictEqual(normal(a[name]), normal(b[name])));
}

function readItem(row: Row, fields: string[]): RecordReadItem {
  return {
    recordType: row.record_type,
    resourceType: row.resource_type,
    resourceId: row.resource_id,
    destinationId: row.destination_id ?? undefined,
    target: row.sent_target === null ? undefined : (JSON.parse(row.sent_target) as Record<string, unknown>),
    fields,
  };
}

const ROW_COLUMNS = ['resource_id', 'resource_type', 'record_type', 'snapshot', 'dirty_seq', 'processed_seq', 'destination_deleted', 'unconfirmed', 'destination_id', 'sent_target'] as const;

async function rowsOf(db: Kysely<Database>, destination: string, recordType: string, ids: string[]): Promise<Row[]> {
  if (ids.length === 0) return [];
  return db.selectFrom('records').select(ROW_COLUMNS).where('destination', '=', destination).where('record_type', '=', recordType).where('resource_id', 'in', ids).execute();
}

/**
 * The delivered (or maybe delivered) and not deleted records with ids after `from` up to `to` (null: no bound), in
 * code-unit order — PostgreSQL compares with the C collation, as SQLite and JavaScript do — read in chunks.
 */
async function deliveredBetween(db: Kysely<Database>, dialect: Dialect, destination: string, recordType: string, from: string | null, to: string | null): Promise<Row[]> {
  const id = dialect === 'postgres' ? sql<string>`resource_id collate "C"` : sql<string>`resource_id`;
  const rows: Row[] = [];
  let after = from;
  for (;;) {
    const chunk = await db
      .selectFrom('records')
      .select(ROW_COLUMNS)
      .where('destination', '=', destination)
      .where('record_type', '=', recordType)
      .where('destination_deleted', '=', 0)
      .where((eb) => eb.or([eb('snapshot', 'is not', null), eb('unconfirmed', '=', 1)]))
      .$if(after !== null, (qb) => qb.where(id, '>', after!))
      .$if(to !== null, (qb) => qb.where(id, '<=', to!))
      .orderBy(id)
      .limit(CONFIRM_CHUNK)
      .execute();
    rows.push(...chunk);
    if (chunk.length < CONFIRM_CHUNK) return rows;
    after = chunk.at(-1)!.resource_id;
  }
}

/** The rows whose resources commercetools does not have (asked by id: one created meanwhile is not extra). */
async function confirmGone(fetcher: ResourceFetcher, resourceType: string, rows: Row[]): Promise<Row[]> {
  const gone: Row[] = [];
  for (let start = 0; start < rows.length; start += CONFIRM_CHUNK) {
    const chunk = rows.slice(start, start + CONFIRM_CHUNK);
    const found = await fetcher.fetchByIds(resourceType, chunk.map((row) => row.resource_id));
    gone.push(...chunk.filter((row) => !found.has(row.resource_id)));
  }
  return gone;
}

/**
 * Each resource mapped for the destination as record sync maps it (referenced objects expanded, a customer's
 * orders read for `$orders`, the PII policy applied): the mapped record, null when a `when:` block leaves it out,
 * or the error that kept it from being mapped.
 */
async function mapPage(deps: ReconcileDeps, route: RecordRoute, destination: string, resources: Array<Record<string, unknown> & { id: string }>, keys: PiiKeys): Promise<Map<string, Record<string, unknown> | null | Error>> {
  const result = new Map<string, Record<string, unknown> | null | Error>();
  let expanded: unknown[] = resources;
  if (route.mapping.references.length > 0 && resources.length > 0) expanded = await deps.references.expand(resources.map((resource) => ({ resource, references: route.mapping.references })));
  let orders: Map<string, Record<string, unknown>[]> | Error | undefined;
  if (route.mapping.readsOrders) orders = await customersOrders(destination, new Map(resources.map((r) => [r.id, r])), deps.fetcher, deps.identities, keys);
  for (const [index, resource] of resources.entries()) {
    const source = expanded[index];
    if (source instanceof Error) {
      result.set(resource.id, source);
      continue;
    }
    if (orders instanceof Error) {
      result.set(resource.id, orders);
      continue;
    }
    try {
      const person = keys.persons(route.resourceType, resource);
      const mapped = await route.mapping.apply(source, { tokens: keys.tokens?.forSubject(customerIdOf(person)), orders: orders === undefined ? undefined : (orders.get(resource.id) ?? []) });
      result.set(resource.id, mapped.skip ? null : mapped.payload);
    } catch (error) {
      result.set(resource.id, error instanceof Error ? error : new Error(String(error)));
    }
  }
  return result;
}

/**
 * Marks the keys dirty through the record path for a forced resend (FORCED_RESEND): commercetools is read again and
 * the whole record sent under a key of its own, or, for a resource commercetools no longer has, its delete. One
 * transaction, in the order every writer of `records` locks rows.
 */
async function queueRepairs(db: Kysely<Database>, marks: ReturnType<typeof prepareRecordMarks>, destination: string, route: RecordRoute, repairs: Array<{ resourceId: string }>, correlationId: string, at: number): Promise<void> {
  const rows: Array<Insertable<RecordsTable>> = repairs
    .map((r) => ({
      destination,
      record_type: route.recordType,
      resource_id: r.resourceId,
      resource_type: route.resourceType,
      dirty_seq: 1,
      due_at: at,
      seen_version: null,
      deleted_version: null,
      carried_version: null,
      carried_resource: null,
      refresh: FORCED_RESEND,
      correlation_id: correlationId,
      dirtied_at: at,
      occurred_at: null,
    }))
    .sort(compareRecordKeys);
  await db.transaction().execute((trx) => marks(trx, rows));
}
