// Inbound work (two-way sync), the engine's third kind of work beside record sync and event delivery: a stored
// webhook of a destination (store/inbound.ts) becomes, field by field, a decision and maybe a commercetools update.
// For each change: the record it is about (by the destination's id of it, or the commercetools id), the field's
// ownership (commercetools-owned fields are never written back), the record's lease taken (the one record sync's
// claim takes: the two never decide on one record's field state at once; while record sync has it, the change waits
// without counting an attempt; renewed with the row's own lease until the row is finished), an echo of ctbridge's own
// write to the destination dropped, then — read commercetools, decide by the conflict rule (field-state.ts), write
// with the version read; on 409 ConcurrentModification read again, decide again, write again. The destination's value
// is written through the inverse of the field's transforms (mapping/inverse.ts), into a custom field, a standard
// field or a custom object (by container and a key filled from the record; the rest of its value kept). The field
// state, the record's snapshot (what the destination holds: so the Subscription's echo of this write sends nothing
// back) and the audit entry (fields, old/new as digests, rule, outcome) are committed together. A change
// commercetools wins marks the record dirty, so record sync sends commercetools' value back to the destination.
// Retries back off, failures that cannot succeed become dead letters (replayable), an unknown item among them with
// the reason. A destination that sends whole snapshots of fields it owns (Momentis' loyalty state) has them written
// to the resource's custom fields instead, when newer than the version commercetools holds (applySnapshot), and its
// rewards become customer-bound discount codes (commercetools/reward-codes.ts).
import type { Kysely, Transaction } from 'kysely';
import type { Logger } from 'pino';
import type { DestinationConfig, EngineConfig } from '../config/schema.ts';
import { CUSTOM_OBJECT_NAME, WRITABLE_STANDARD, type FieldOwnership, type WriteBack } from '../config/ownership.ts';
import type { LoyaltyReward, RewardCodeSyncReport } from '../commercetools/reward-codes.ts';
import { ConcurrentModificationError, type CommercetoolsWriter, type WritableType } from '../commercetools/writeback.ts';
import { PermanentError, RetryableError, toDeliveryError } from '../destinations/kit/errors.ts';
import type { DestinationDefinition, InboundChange, InboundSnapshot } from '../destinations/types.ts';
import { compileField, recordContext, type FieldSpec } from '../mapping/field.ts';
import { compileInverse } from '../mapping/inverse.ts';
import { compilePath, readPath } from '../mapping/path.ts';
import type { PiiKeys } from '../pii/keys.ts';
import { insertAudit, type AuditEntry } from '../store/audit-log.ts';
import { claimInbound, fieldKeyString, finishInbound, leaseRecord, loadFieldStates, markRecordDirty, releaseRecord, renewInboundLeases, saveFieldState, setSnapshotField, type InboundRow } from '../store/inbound.ts';
import type { Database } from '../store/schema.ts';
import { EMPTY_FIELD_STATE, currentDigest, decideWriteBack, onDestinationEvent, type ConflictRule, type Digester, type FieldState } from './field-state.ts';
import { renewedWhile } from './leases.ts';
import { decideAfterFailure } from './retry-policy.ts';
import type { Routes } from './routes.ts';
import { WorkLoop } from './work-loop.ts';

/** Reads and writes of one change, before commercetools is taken to have moved on too fast to ever win against. */
const MAX_CONFLICT_ROUNDS = 5;

export interface InboundWorkDeps {
  destination: DestinationConfig;
  definition: DestinationDefinition;
  db: Kysely<Database>;
  routes: Routes;
  writer: CommercetoolsWriter;
  pii: () => Promise<PiiKeys>;
  engine: EngineConfig;
  logger: Logger;
  /** This process's lease prefix. */
  owner: string;
  /** Records were marked dirty: wake record sync. */
  onDirty: () => void;
  now?: () => number;
}

/** The rule a field's changes are decided by: a destination-owned field's destination always wins. */
export function ruleOf(ownership: FieldOwnership): ConflictRule {
  if (ownership.owner === 'destination') return { rule: 'sourceOfTruth', sourceOfTruth: 'destination' };
  return ownership.conflict ?? { rule: 'sourceOfTruth', sourceOfTruth: 'commercetools' };
}

const describeRule = (rule: ConflictRule) => (rule.rule === 'lastWriteWins' ? `lastWriteWins (ties: ${rule.sourceOfTruth})` : `sourceOfTruth: ${rule.sourceOfTruth}`);

/** The record is leased by record sync: inbound work waits for it, without counting an attempt. */
class RecordBusyError extends RetryableError {}

/** The records one inbound delivery holds the lease of, under its own owner token. */
interface RecordLeases {
  owner: string;
  records: Array<{ destination: string; recordType: string; resourceId: string }>;
}

export function createInboundWork(deps: InboundWorkDeps): WorkLoop<InboundRow> {
  const { destination, definition, db, routes, writer, pii, engine, logger } = deps;
  const now = deps.now ?? Date.now;
  const settings = definition.settings.parse(destination);
  const maxAttempts = destination.inbound?.maxAttempts ?? engine.maxAttempts;

  /** One change: its decision and what to commit; throws DeliveryErrors. */
  async function applyChange(change: InboundChange, row: InboundRow, digest: Digester, lease: RecordLeases) {
    // The record it is about.
    let found: { recordType: string; resourceId: string } | undefined;
    for (const recordType of change.recordTypes) {
      const query = db.selectFrom('records').select(['record_type', 'resource_id']).where('destination', '=', destination.name).where('record_type', '=', recordType);
      const hit = await (change.resourceId !== undefined ? query.where('resource_id', '=', change.resourceId) : query.where('destination_id', '=', change.destinationId ?? '')).executeTakeFirst();
      if (hit) {
        found = { recordType: hit.record_type, resourceId: hit.resource_id };
        break;
      }
    }
    if (!found) throw new PermanentError(`unknown item: no ${change.recordTypes.join(' or ')} record of ${destination.name} has ${change.resourceId !== undefined ? `the commercetools id ${change.resourceId}` : `the ${destination.name} id ${change.destinationId}`} (ctbridge never synced it, or it was deleted)`);
    const route = routes.record(destination.name, found.recordType);
    const ownership = destination.records[found.recordType]?.ownership?.[change.field];
    const base = { at: now(), action: 'writeback', destination: destination.name, itemType: found.recordType, resourceId: found.resourceId, fields: [change.field], correlationId: row.correlation_id };
    if (!route || !ownership?.writeBack || ownership.owner === 'commercetools') {
      return { key: found, audit: { ...base, version: null, outcome: 'skipped', detail: `${change.field} is not written back: ${ownership ? `owner ${ownership.owner}` : 'commercetools owns it'}` } as AuditEntry };
    }
    const rule = ruleOf(ownership);
    // Decide, write and save under the record's lease: record sync decides on the same field state, and neither
    // may save over what the other decided (the save of each is in its own finishing transaction).
    if (!(await leaseRecord(db, { destination: destination.name, ...found }, lease.owner, now(), now() + engine.leaseMs))) {
      throw new RecordBusyError(`record sync has the ${found.recordType} ${found.resourceId} in flight: tried again once it is done`);
    }
    lease.records.push({ destination: destination.name, ...found });
    const fieldKey = { destination: destination.name, recordType: found.recordType, resourceId: found.resourceId, field: change.field };
    const stored: FieldState = (await loadFieldStates(db, destination.name, found.recordType, [found.resourceId])).get(fieldKeyString(fieldKey)) ?? EMPTY_FIELD_STATE;
    const { state: before, digest: newDigest } = currentDigest(stored, change.value, digest);
    const event = onDestinationEvent(before, { digest: newDigest, at: change.at, byUs: change.byUs === true });
    const done = (state: FieldState, version: number | null, outcome: AuditEntry['outcome'], detail: string, effects: { snapshotValue?: unknown; dirty?: boolean } = {}) => ({
      key: found,
      fieldKey,
      state,
      ...('snapshotValue' in effects && { snapshotValue: effects.snapshotValue, setSnapshot: true }),
      dirty: effects.dirty === true,
      audit: { ...base, version, outcome, detail } as AuditEntry,
    });
    if (event.kind === 'ignore') {
      return done(event.state, null, 'skipped', change.byUs ? 'ctbridge\'s own write coming back from the destination: nothing to write back' : 'the destination already held this value, or a later change superseded it: nothing to write back');
    }
    if (event.kind === 'resend') {
      // The destination holds an older write of ctbridge's: send commercetools' value again.
      return done(event.state, null, 'skipped', 'the destination holds an earlier write of ctbridge\'s: commercetools\' value is sent again', { snapshotValue: change.value, dirty: true });
    }
    let state = event.state;
    const typeId = route.resourceType as WritableType;
    const inverse = compileInverse(destination.records[found.recordType]!.fields[change.field] as FieldSpec);
    const fieldSpec = destination.records[found.recordType]!.fields[change.field] as FieldSpec;
    const writeBack = ownership.writeBack;
    for (let round = 0; round < MAX_CONFLICT_ROUNDS; round += 1) {
      const resource = await writer.read(typeId, found.resourceId);
      if (!resource) throw new PermanentError(`the ${typeId} ${found.resourceId} no longer exists in commercetools`);
      let ctValue: unknown;
      let at: number;
      let version: number;
      let write: (value: unknown) => Promise<Record<string, unknown>>;
      if ('customObject' in writeBack) {
        const objectTarget = writeBack.customObject;
        // The value lives in a custom object: commercetools' side of the field is what the object holds there.
        const address = { container: objectTarget.container, key: customObjectKey(objectTarget.key, resource, change.field) };
        const object = await writer.readCustomObject(address);
        ctValue = await forwardValue(fieldSpec, readPath(object?.value, compilePath(objectTarget.path)), resource);
        at = typeof object?.lastModifiedAt === 'string' ? Date.parse(object.lastModifiedAt) : 0;
        version = typeof object?.version === 'number' ? object.version : 0;
        write = (value) => writer.writeCustomObject(address, withValueAt(object?.value, objectTarget.path, value), object ? version : undefined);
      } else {
        const mapped = await route.mapping.apply(resource, { tokens: undefined, orders: undefined });
        ctValue = 'payload' in mapped ? mapped.payload[change.field] : undefined;
        at = typeof resource.lastModifiedAt === 'string' ? Date.parse(resource.lastModifiedAt) : 0;
        version = typeof resource.version === 'number' ? resource.version : 0;
        write = (value) => writer.update(typeId, found.resourceId, version, writeActions(writeBack, value, resource, typeId, change.field));
      }
      const ct = currentDigest(state, ctValue, digest);
      const digests = `old ${ct.digest}, new ${newDigest}`;
      const step = decideWriteBack(event.kind, ct.state, { digest: ct.digest, at }, { digest: newDigest, at: change.at, byUs: false }, rule);
      // A current edit: the destination holds it (the snapshot takes it). An overtaken one: it holds something else.
      const holds = step.holds ? { snapshotValue: change.value } : {};
      if (step.decision !== 'destination') {
        const agreed = step.decision === 'agreed';
        return done(step.observed, version, agreed ? 'skipped' : 'ok', agreed ? `commercetools already holds the value (${describeRule(rule)})` : `commercetools wins (${describeRule(rule)}; ${digests}): sent back to the destination`, { ...holds, dirty: step.dirty });
      }
      try {
        const updated = await write(inverse(change.value));
        return done(step.written, typeof updated.version === 'number' ? updated.version : null, 'ok', `written to commercetools (${describeRule(rule)}; ${digests}; ${round} conflicts re-decided)`, { ...holds, dirty: step.dirty });
      } catch (error) {
        if (!(error instanceof ConcurrentModificationError)) throw error;
        // Someone else wrote in between: read again, decide again.
        state = step.observed;
      }
    }
    throw new RetryableError(`commercetools changed the ${typeId} ${found.resourceId} ${MAX_CONFLICT_ROUNDS} times while writing ${change.field} back`);
  }

  /**
   * A snapshot of fields the destination owns outright: written to the resource's custom fields when newer than
   * the version there (a redelivered or overtaken snapshot changes nothing), at the version read; 409 → again.
   */
  async function applySnapshot(snapshot: InboundSnapshot, row: InboundRow) {
    const key = { recordType: snapshot.resourceType, resourceId: snapshot.resourceId };
    const base = { action: 'writeback', destination: destination.name, itemType: snapshot.resourceType, resourceId: snapshot.resourceId, fields: Object.keys(snapshot.fields), correlationId: row.correlation_id };
    for (let round = 0; round < MAX_CONFLICT_ROUNDS; round += 1) {
      const resource = await writer.read(snapshot.resourceType, snapshot.resourceId);
      if (!resource) throw new PermanentError(`the ${snapshot.resourceType} ${snapshot.resourceId} does not exist in commercetools`);
      const version = typeof resource.version === 'number' ? resource.version : 0;
      const custom = resource.custom as { type?: unknown; fields?: Record<string, unknown> } | undefined;
      const held = custom?.fields?.[snapshot.versionField];
      if (typeof held === 'number' && held >= snapshot.version) {
        // This very snapshot, written by an attempt whose reward codes then failed: the codes are synced again
        // (idempotent). A newer one's own row syncs its codes.
        const codes = held === snapshot.version ? await syncRewardCodesOf(snapshot) : '';
        return { key, audit: { ...base, at: now(), version, outcome: 'skipped', detail: `commercetools holds version ${held} of these fields, this snapshot is version ${snapshot.version}${codes}` } as AuditEntry };
      }
      const present = Object.fromEntries(Object.entries(snapshot.fields).filter(([, value]) => value !== null));
      const actions = custom?.type
        ? Object.entries(snapshot.fields).map(([name, value]) => ({ action: 'setCustomField', name, ...(value !== null && { value }) }))
        : [{ action: 'setCustomType', type: { typeId: 'type', key: snapshot.type }, fields: present }];
      let updated: Record<string, unknown>;
      try {
        updated = await writer.update(snapshot.resourceType, snapshot.resourceId, version, actions);
      } catch (error) {
        if (!(error instanceof ConcurrentModificationError)) throw error;
        continue;
      }
      // After the snapshot is written, before the row is finished: a failure retries the row, which finds this
      // version written and syncs the codes again.
      const codes = await syncRewardCodesOf(snapshot);
      return { key, audit: { ...base, at: now(), version: typeof updated.version === 'number' ? updated.version : null, outcome: 'ok', detail: `version ${snapshot.version} written (${round} conflicts re-read)${codes}` } as AuditEntry };
    }
    throw new RetryableError(`commercetools changed the ${snapshot.resourceType} ${snapshot.resourceId} ${MAX_CONFLICT_ROUNDS} times while writing ${destination.name}'s snapshot`);
  }

  /**
   * The snapshot's rewards as customer-bound discount codes (commercetools/reward-codes.ts); what was done, for the
   * audit (reward ids and counts, nothing personal). Snapshots of one customer may be applied at once: when a newer
   * one was written meanwhile, its rewards as commercetools holds them are synced too, so the sync finishing last
   * leaves the newest rewards' codes.
   */
  async function syncRewardCodesOf(snapshot: InboundSnapshot): Promise<string> {
    const codes = snapshot.rewardCodes;
    if (!codes || snapshot.resourceType !== 'customer') return '';
    let rewards: LoyaltyReward[] = codes.rewards;
    let version = snapshot.version;
    for (let round = 0; ; round += 1) {
      const report = await writer.syncRewardCodes({ customerId: snapshot.resourceId, rewards, prefix: codes.prefix, storeKey: codes.storeKey, now });
      const fields = ((await writer.read('customer', snapshot.resourceId))?.custom as { fields?: Record<string, unknown> } | undefined)?.fields;
      const held = fields?.[snapshot.versionField];
      const newer = typeof held === 'number' && held > version && round + 1 < MAX_CONFLICT_ROUNDS ? heldRewards(fields?.[codes.rewardsField]) : undefined;
      if (!newer) return describeCodes(report);
      rewards = newer;
      version = held as number;
    }
  }

  async function processRow(row: InboundRow, lease: RecordLeases): Promise<void> {
    const keys = await pii();
    const at = now();
    const release = async (trx: Transaction<Database>) => {
      for (const key of lease.records) await releaseRecord(trx, key, lease.owner);
    };
    try {
      if (row.body === null) throw new PermanentError('the stored webhook body is gone');
      const body = JSON.parse(keys.sealer.open(row.body)) as unknown;
      const snapshot = definition.inbound!.snapshot?.(settings, body);
      const changes = snapshot ? [] : definition.inbound!.changes(settings, body);
      const results: Array<Awaited<ReturnType<typeof applyChange>>> = [];
      if (snapshot) results.push(await applySnapshot(snapshot, row));
      for (const change of changes) results.push(await applyChange(change, row, keys.fieldDigest, lease));
      let dirty = false;
      await db.transaction().execute(async (trx) => {
        await release(trx);
        if (!(await finishInbound(trx, row, { state: 'done' }))) return; // the lease went to another process
        for (const result of results) {
          if ('state' in result && result.state && result.fieldKey) {
            await saveFieldState(trx, result.fieldKey, result.state);
            if ('setSnapshot' in result) {
              const route = routes.record(destination.name, result.key.recordType)!;
              // What the destination holds now, in the snapshot's terms (personal fields as digests).
              const value = keys.snapshot({ [result.fieldKey.field]: result.snapshotValue }, route.mapping.personalFields)[result.fieldKey.field];
              await setSnapshotField(trx, result.fieldKey, value);
            }
            if (result.dirty) {
              await markRecordDirty(trx, result.key && { destination: destination.name, ...result.key }, row.correlation_id, at);
              dirty = true;
            }
          }
        }
        await insertAudit(trx, results.map((result) => result.audit));
      });
      if (dirty) deps.onDirty();
    } catch (error) {
      const failure = toDeliveryError(error);
      if (error instanceof RecordBusyError) {
        // Not a failure: the record is record sync's for a moment.
        await db.transaction().execute(async (trx) => {
          await release(trx);
          await finishInbound(trx, row, { state: 'pending', error: failure.message, dueAt: now() + engine.pollIntervalMs, deferred: true });
        });
        return;
      }
      const decision = decideAfterFailure({ attempts: row.attempts, firstFailedAt: row.received_at, attemptLog: null }, failure, at, { ...engine, maxAttempts });
      await db.transaction().execute(async (trx) => {
        await release(trx);
        if (decision.action === 'retry') {
          await finishInbound(trx, row, { state: 'pending', error: failure.message, dueAt: decision.dueAt });
          return;
        }
        if (!(await finishInbound(trx, row, { state: 'dead', error: failure.message }))) return;
        await trx
          .insertInto('dead_letters')
          .values({ destination: destination.name, kind: 'inbound', item_type: null, resource_id: null, dedupe_key: row.dedupe_key, correlation_id: row.correlation_id, reason: decision.reason, last_error: failure.message, attempts: decision.attempts, attempt_log: JSON.stringify(decision.attemptLog), payload: null, created_at: at, replayed_at: null })
          .execute();
        await insertAudit(trx, [{ at, action: 'writeback', destination: destination.name, itemType: null, resourceId: null, version: null, fields: null, correlationId: row.correlation_id, outcome: 'dead-lettered', detail: decision.reason }]);
      });
      logger.warn({ correlationId: row.correlation_id, error: failure.message, action: decision.action }, 'inbound change failed');
    }
  }

  return new WorkLoop<InboundRow>({
    name: 'inbound',
    concurrency: 1,
    batchSize: 20,
    pollIntervalMs: engine.pollIntervalMs,
    logger,
    claim: (limit) => claimInbound(db, destination.name, { owner: deps.owner, limit, now: now(), leaseMs: engine.leaseMs }),
    process: async (rows) => {
      const leases = rows.map((row): RecordLeases => ({ owner: `${deps.owner}/inbound:${row.id}`, records: [] }));
      // The batch's rows and the records they took stay leased until each row is finished, however long
      // commercetools takes (retries, 409s re-decided) and however long a row waits for the ones before it: a lease
      // that ran out would let record sync send a record this work is deciding on, or another process work a row.
      const renew = async (leaseUntil: number) => {
        for (const [i, row] of rows.entries()) await renewInboundLeases(db, row, leases[i]!.records, leases[i]!.owner, leaseUntil);
      };
      await renewedWhile({ leaseMs: engine.leaseMs, logger, now, renew }, async () => {
        // Snapshots carry their version and are written only when newer, so their order does not matter: a batch's
        // go at once (two of one resource meet as a 409, read again). Field edits go one after another.
        if (definition.inbound?.snapshot) await Promise.all(rows.map((row, i) => processRow(row, leases[i]!)));
        else for (const [i, row] of rows.entries()) await processRow(row, leases[i]!);
      });
    },
  });
}

/** The rewards a snapshot left in commercetools (the JSON of its available ones), or undefined when unreadable. */
function heldRewards(value: unknown): LoyaltyReward[] | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    const parsed = JSON.parse(value) as unknown;
    return Array.isArray(parsed) ? (parsed as LoyaltyReward[]) : undefined;
  } catch {
    return undefined;
  }
}

function describeCodes(report: RewardCodeSyncReport): string {
  const counts = (['created', 'updated', 'deactivated'] as const).map((kind) => `${report[kind].length} ${kind}`).join(', ');
  const refused = report.refused.map((entry) => `${entry.rewardId}: ${entry.reason}`).join('; ');
  return `; reward codes ${counts}${refused ? `, refused ${refused}` : ''}`;
}

/** The key of a custom object written back: its template filled from the record's resource. */
export function customObjectKey(template: string, resource: Record<string, unknown>, field: string): string {
  const key = compileField({ template }).read(resource, recordContext(resource));
  if (typeof key !== 'string' || !CUSTOM_OBJECT_NAME.test(key) || key.length > 256) {
    throw new PermanentError(`${field}: the custom object key "${template}" gives ${key === null ? 'nothing' : 'a key commercetools does not allow (letters, digits, - _ ~ . up to 256)'} for this record`);
  }
  return key;
}

/** A stored value as the field maps it (its pipe applied), so both directions compare like with like. */
async function forwardValue(spec: FieldSpec, stored: unknown, resource: Record<string, unknown>): Promise<unknown> {
  if (typeof spec === 'string' || !('path' in spec)) return stored;
  return await compileField({ ...spec, path: 'stored' }).read({ stored }, recordContext(resource));
}

/** A copy of a custom object's value with `value` at the dotted path (a null removes it: commercetools keeps no nulls). */
export function withValueAt(current: unknown, path: string, value: unknown): Record<string, unknown> {
  const root: Record<string, unknown> = current !== null && typeof current === 'object' && !Array.isArray(current) ? { ...(current as Record<string, unknown>) } : {};
  const names = path.split('.');
  let at = root;
  for (const name of names.slice(0, -1)) {
    const next = at[name];
    at[name] = next !== null && typeof next === 'object' && !Array.isArray(next) ? { ...(next as Record<string, unknown>) } : {};
    at = at[name] as Record<string, unknown>;
  }
  const last = names.at(-1)!;
  if (value === null || value === undefined) delete at[last];
  else at[last] = value;
  return root;
}

/** The update actions that put `value` where the field is written back (a custom field or a standard one). */
export function writeActions(writeBack: Exclude<WriteBack, { customObject: unknown }>, value: unknown, resource: Record<string, unknown>, typeId: WritableType, field: string): Array<Record<string, unknown>> {
  if ('standard' in writeBack) {
    const action = WRITABLE_STANDARD[typeId]?.[writeBack.standard];
    if (!action) throw new PermanentError(`${writeBack.standard} of a ${typeId} is not writable`);
    if (writeBack.standard === 'customerGroup') return [{ action, ...(value !== null && value !== undefined && { customerGroup: { typeId: 'customer-group', key: scalarText(value) } }) }];
    return [{ action, [writeBack.standard]: value ?? undefined }];
  }
  const typed = value === null || value === undefined || value === '' ? undefined : writeBack.fieldType === 'Number' ? Number(value) : writeBack.fieldType === 'Boolean' ? value === true || value === 'true' : scalarText(value);
  if (typed !== undefined && typeof typed === 'number' && Number.isNaN(typed)) throw new PermanentError(`${field}: the value is not a number`);
  const custom = resource.custom as { type?: { id?: string; obj?: { key?: string } } } | undefined;
  if (!custom?.type) {
    return [{ action: 'setCustomType', type: { typeId: 'type', key: writeBack.type }, fields: typed === undefined ? {} : { [writeBack.customField]: typed } }];
  }
  return [{ action: 'setCustomField', name: writeBack.customField, ...(typed !== undefined && { value: typed }) }];
}

/** A scalar as text; an object (which a custom String field cannot take) as JSON. */
function scalarText(value: unknown): string {
  return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
}
