// How a destination (or one record type of it) learns of changes: `sync: { mode: events }` (the default: the
// Subscription's notifications) or `sync: { mode: scheduled, every: 5m }` / `cron: "*/5 * * * *"`, where
// ctbridge polls commercetools on that schedule instead (backfill/scheduled-sync.ts). A record type's own
// `sync:` replaces its destination's.
import { z } from 'zod';
import { checkSchedule, durationSchema, parseDuration, scheduleFields } from './schedule.ts';

/** engine/routes.ts ORDERS_OF_CUSTOMERS (not imported: the configuration does not depend on the engine). */
const ORDERS_OF_CUSTOMERS = '$orders';

export const DEFAULT_OVERLAP = '2m';

export const syncSchema = z
  .strictObject({
    mode: z.enum(['events', 'scheduled']).describe('events: changes arrive as Subscription notifications; scheduled: ctbridge polls commercetools for them'),
    ...scheduleFields,
    overlap: durationSchema
      .optional()
      .describe(`scheduled: each poll reads again what changed this long before the previous poll started, for clock skew between ctbridge and commercetools and for late writes (default ${DEFAULT_OVERLAP}); what is read twice sends nothing`),
  })
  .superRefine((sync, ctx) => {
    if (sync.mode === 'scheduled') {
      checkSchedule(sync, ctx, 'a scheduled sync');
      return;
    }
    for (const key of ['every', 'cron', 'overlap'] as const) {
      if (sync[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `${key} applies to mode: scheduled (this sync is mode: ${sync.mode})` });
    }
  })
  .describe('how changes reach this destination: Subscription notifications (mode: events, the default) or polling commercetools on a schedule (mode: scheduled, with every or cron)');

export type SyncConfig = z.infer<typeof syncSchema>;

/** One scheduled sync: a record type of a destination polled on its schedule. */
export interface ScheduledSyncConfig {
  destination: string;
  recordType: string;
  every?: string | undefined;
  cron?: string | undefined;
  overlapMs: number;
}

interface SyncedDestination {
  name: string;
  sync?: SyncConfig | undefined;
  records: Record<string, { sync?: SyncConfig | undefined }>;
}

/**
 * Every record type whose effective sync (its own, else its destination's) is scheduled. `ordersOfCustomers`
 * names, per destination, the customer record types whose mappings read `$orders` (engine/routes.ts): when one of
 * them is scheduled, the destination's orders are polled on its schedule too (record type `$orders`), so that a
 * changed order refreshes its customer's record as its notification would.
 */
export function scheduledSyncs(destinations: readonly SyncedDestination[], ordersOfCustomers: (destination: string) => readonly string[] = () => []): ScheduledSyncConfig[] {
  const result: ScheduledSyncConfig[] = [];
  for (const destination of destinations) {
    for (const [recordType, mapping] of Object.entries(destination.records)) {
      const sync = mapping.sync ?? destination.sync;
      if (sync?.mode !== 'scheduled') continue;
      result.push({ destination: destination.name, recordType, every: sync.every, cron: sync.cron, overlapMs: parseDuration(sync.overlap ?? DEFAULT_OVERLAP)! });
    }
    const readingOrders = result.find((sync) => sync.destination === destination.name && ordersOfCustomers(destination.name).includes(sync.recordType));
    if (readingOrders) result.push({ ...readingOrders, recordType: ORDERS_OF_CUSTOMERS });
  }
  return result;
}

/**
 * The Message commercetools records when a resource of the type is deleted: what scheduled sync reads deletions
 * from (backfill/deletions.ts). Payments and carts have none (the Message types of
 * https://docs.commercetools.com/api/projects/messages: no PaymentDeleted, no CartDeleted).
 */
export const DELETION_MESSAGES: Readonly<Record<string, string>> = {
  customer: 'CustomerDeleted',
  order: 'OrderDeleted',
  product: 'ProductDeleted',
  'business-unit': 'BusinessUnitDeleted',
};

/**
 * Scheduled syncs read deletions from the Messages API: warned (not refused) when the configured scopes cannot,
 * since the sync then reports deletions as not detectable.
 */
export function syncScopeWarnings(scopes: readonly string[], destinations: readonly (SyncedDestination & { records: Record<string, { source?: string | undefined; sync?: SyncConfig | undefined }> })[]): string[] {
  if (scopes.length === 0) return [];
  const names = new Set(scopes.map((scope) => scope.split(':')[0]!));
  if (names.has('manage_project')) return [];
  const withDeletions = scheduledSyncs(destinations).filter((sync) => {
    const mapping = destinations.find((d) => d.name === sync.destination)?.records[sync.recordType];
    return DELETION_MESSAGES[mapping?.source ?? sync.recordType] !== undefined;
  });
  if (withDeletions.length === 0) return [];
  const missing = ['view_messages', 'view_project_settings'].filter((scope) => !names.has(scope) && !(scope === 'view_project_settings' && names.has('manage_project_settings')));
  return missing.length === 0 ? [] : [`commercetools.scopes: scheduled sync reads deletions from the Messages API (view_messages) once it has seen that the project keeps them (view_project_settings); without ${missing.join(' and ')} deletions are reported as not detectable`];
}
