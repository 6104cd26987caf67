// `reconcile:` of a destination in ctbridge.yaml (scheduled reconciliation, schedule.ts) and the durations its
// `every` takes. Kept apart from the scheduler so that reading the configuration loads nothing else.
import { z } from 'zod';
import { parseDuration } from '../config/schedule.ts';

const MIN_EVERY_MS = 60_000;

export const reconcileScheduleSchema = z
  .strictObject({
    every: z
      .string()
      .superRefine((text, ctx) => {
        const ms = parseDuration(text);
        if (ms === undefined) ctx.addIssue({ code: 'custom', message: 'a duration such as 24h, 90m or 1d12h (units ms, s, m, h, d)' });
        else if (ms < MIN_EVERY_MS) ctx.addIssue({ code: 'custom', message: 'at least 1m: a run reads every record of the destination' });
      })
      .describe('how often to reconcile this destination, e.g. 24h'),
    repair: z.boolean().default(false).describe('queue the fixes of what each run finds (as `ctbridge reconcile --repair`)'),
  })
  .optional()
  .describe('scheduled reconciliation inside `ctbridge start`: commercetools against what was delivered and what the destination holds; counts on /metrics');
export type ReconcileSchedule = NonNullable<z.infer<typeof reconcileScheduleSchema>>;

