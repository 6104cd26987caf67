// `reconcile:` of a destination in ctbridge.yaml (scheduled reconciliation, schedule.ts) and the durations its
// `every` takes. Kept apart from the scheduler so that reading the configuration loads nothing else.
import { z } from 'zod';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:ms|s|m|h|d))+$/;
const MIN_EVERY_MS = 60_000;

/** `24h`, `90m`, `1d12h`: the milliseconds it says, or undefined when it is not such a duration. */
export function parseEvery(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+)(ms|s|m|h|d)/g)) total += Number(amount) * UNITS[unit!]!;
  return Number.isSafeInteger(total) ? total : undefined;
}

export const reconcileScheduleSchema = z
  .strictObject({
    every: z
      .string()
      .superRefine((text, ctx) => {
        const ms = parseEvery(text);
        if (ms === undefined) ctx.addIssue({ code: 'custom', message: 'a duration such as 24h, 90m or 1d12h (units ms, s, m, h, d)' });
        else if (ms < MIN_EVERY_MS) ctx.addIssue({ code: 'custom', message: 'at least 1m: a run reads every record of the destination' });
      })
      .describe('how often to reconcile this destination, e.g. 24h'),
    repair: z.boolean().default(false).describe('queue the fixes of what each run finds (as `ctbridge reconcile --repair`)'),
  })
  .optional()
  .describe('scheduled reconciliation inside `ctbridge start`: commercetools against what was delivered and what the destination holds; counts on /metrics');
export type ReconcileSchedule = NonNullable<z.infer<typeof reconcileScheduleSchema>>;

