// When something recurring runs: a schedule is either an interval (`every: 5m`) or a cron expression (`cron:
// "*/5 * * * *"`), validated in the configuration with messages that name the part that is wrong, and `nextRun`
// says when it is next due after a given moment. Cron expressions have the five fields of Vixie cron (minute,
// hour, day of month, month, day of week), evaluated in UTC so that every ctbridge process sharing a store agrees
// on the times whatever the machine's zone. No cron package is in the dependencies, and this much fits in a page.
import { z } from 'zod';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:ms|s|m|h|d))+$/;

/** Milliseconds of a duration such as `30s`, `5m`, `1h30m`, `1d`; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  if (!DURATION.test(text)) return undefined;
  let total = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+)(ms|s|m|h|d)/g)) total += Number(amount) * UNIT_MS[unit!]!;
  return total > 0 && Number.isSafeInteger(total) ? total : undefined;
}

export const DURATION_MESSAGE = 'a duration such as 30s, 5m, 1h30m or 1d (units ms, s, m, h, d), greater than zero';

export const durationSchema = z.string().refine((text) => parseDuration(text) !== undefined, DURATION_MESSAGE);

interface Field {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const FIELDS: readonly Field[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] },
  // 7 is Sunday too, as in Vixie cron.
  { name: 'day of week', min: 0, max: 7, names: ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] },
];

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

export interface Cron {
  minutes: ReadonlySet<number>;
  hours: ReadonlySet<number>;
  daysOfMonth: ReadonlySet<number>;
  months: ReadonlySet<number>;
  /** 0 (Sunday) to 6. */
  daysOfWeek: ReadonlySet<number>;
  /** Both day fields restricted: a day matching either runs (cron's rule), otherwise both must match. */
  eitherDay: boolean;
}

export class CronError extends Error {}

/** Parses a cron expression; throws CronError naming the field and the part that is wrong. */
export function parseCron(expression: string): Cron {
  const text = MACROS[expression.trim().toLowerCase()] ?? expression.trim();
  const parts = text.split(/\s+/);
  if (parts.length !== 5) throw new CronError(`a cron expression has 5 fields (minute hour day-of-month month day-of-week), e.g. "*/5 * * * *"; got ${parts.length}`);
  const sets = parts.map((part, index) => parseField(part, FIELDS[index]!));
  const daysOfWeek = new Set([...sets[4]!].map((day) => day % 7));
  return { minutes: sets[0]!, hours: sets[1]!, daysOfMonth: sets[2]!, months: sets[3]!, daysOfWeek, eitherDay: !parts[2]!.startsWith('*') && !parts[4]!.startsWith('*') };
}

function parseField(part: string, field: Field): Set<number> {
  const values = new Set<number>();
  for (const item of part.split(',')) {
    const match = /^(\*|[^/-]+(?:-[^/-]+)?)(?:\/(\d+))?$/.exec(item);
    if (!match) throw new CronError(`${field.name} field "${part}": "${item}" is not a value, a range a-b, * or a step (*/n, a-b/n)`);
    const [, range, stepText] = match;
    const step = stepText === undefined ? 1 : Number(stepText);
    if (step < 1) throw new CronError(`${field.name} field "${part}": a step is at least 1`);
    let from: number;
    let to: number;
    if (range === '*') [from, to] = [field.min, field.max === 7 ? 6 : field.max];
    else if (range!.includes('-')) {
      const [a, b] = range!.split('-') as [string, string];
      [from, to] = [value(a, field, part), value(b, field, part)];
      if (from > to) throw new CronError(`${field.name} field "${part}": the range ${a}-${b} runs backwards`);
    } else {
      from = value(range!, field, part);
      // `5/15` is 5, 20, 35, 50: from the value to the end of the field.
      to = stepText === undefined ? from : field.max;
    }
    for (let v = from; v <= to; v += step) values.add(v);
  }
  return values;
}

function value(text: string, field: Field, part: string): number {
  const named = field.names?.indexOf(text.toUpperCase()) ?? -1;
  const n = named >= 0 ? named + (field.name === 'month' ? 1 : 0) : /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (Number.isNaN(n)) throw new CronError(`${field.name} field "${part}": "${text}" is not a number${field.names ? ` or a name (${field.names.join(', ')})` : ''}`);
  if (n < field.min || n > field.max) throw new CronError(`${field.name} field "${part}": ${n} is out of range ${field.min}-${field.max}`);
  return n;
}

/** The first minute strictly after `after` that the expression matches (UTC); throws when none comes within years. */
export function nextCronTime(cron: Cron, after: Date): Date {
  let t = Math.floor(after.getTime() / 60_000) * 60_000 + 60_000;
  // Each step skips a whole month, day or hour that cannot match, so even a yearly expression takes a few
  // thousand steps; one that never matches (the 30th of February) ends here.
  for (let steps = 0; steps < 50_000; steps += 1) {
    const d = new Date(t);
    const [year, month, day, hour] = [d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours()];
    if (!cron.months.has(month + 1)) t = Date.UTC(year, month + 1, 1);
    else if (!dayMatches(cron, d)) t = Date.UTC(year, month, day + 1);
    else if (!cron.hours.has(hour)) t = Date.UTC(year, month, day, hour + 1);
    else if (!cron.minutes.has(d.getUTCMinutes())) t += 60_000;
    else return d;
  }
  throw new CronError('the expression matches no date (a day that no month has?)');
}

function dayMatches(cron: Cron, d: Date): boolean {
  const dom = cron.daysOfMonth.has(d.getUTCDate());
  const dow = cron.daysOfWeek.has(d.getUTCDay());
  return cron.eitherDay ? dom || dow : dom && dow;
}

const cronCache = new Map<string, Cron>();
function cachedCron(expression: string): Cron {
  let cron = cronCache.get(expression);
  if (!cron) {
    cron = parseCron(expression);
    cronCache.set(expression, cron);
  }
  return cron;
}

export const cronSchema = z
  .string()
  .describe('a cron expression of five fields (minute hour day-of-month month day-of-week) in UTC, e.g. "*/5 * * * *", or @hourly, @daily, @weekly, @monthly')
  .superRefine((expression, ctx) => {
    try {
      nextCronTime(parseCron(expression), new Date(0));
    } catch (error) {
      if (!(error instanceof CronError)) throw error;
      ctx.addIssue({ code: 'custom', message: error.message });
    }
  });

/** The two ways to say when: give exactly one. Spread into an object schema that has more settings. */
export const scheduleFields = {
  every: durationSchema.optional().describe('run at this interval after the previous run started, e.g. 5m, 1h, 24h'),
  cron: cronSchema.optional(),
};

export interface Schedule {
  every?: string | undefined;
  cron?: string | undefined;
}

/** Adds an issue unless exactly one of `every` and `cron` is given (for objects with scheduleFields). */
export function checkSchedule(schedule: Schedule, ctx: z.RefinementCtx, what = 'a schedule'): void {
  if (schedule.every !== undefined && schedule.cron !== undefined) ctx.addIssue({ code: 'custom', path: ['cron'], message: `${what} takes every or cron, not both` });
  if (schedule.every === undefined && schedule.cron === undefined) ctx.addIssue({ code: 'custom', path: ['every'], message: `${what} needs every (e.g. 5m) or cron (e.g. "*/5 * * * *")` });
}

export const scheduleSchema = z.strictObject(scheduleFields).superRefine((schedule, ctx) => checkSchedule(schedule, ctx));

/** When a schedule (validated) is next due after `after`: `every` after it, or cron's next matching minute. */
export function nextRun(schedule: Schedule, after: Date): Date {
  if (schedule.every !== undefined) {
    const ms = parseDuration(schedule.every);
    if (ms === undefined) throw new Error(`"${schedule.every}" is not a duration`);
    return new Date(after.getTime() + ms);
  }
  if (schedule.cron !== undefined) return nextCronTime(cachedCron(schedule.cron), after);
  throw new Error('a schedule needs every or cron');
}

/** How a schedule is written, for status lines and to notice that it changed. */
export function describeSchedule(schedule: Schedule): string {
  return schedule.every !== undefined ? `every ${schedule.every}` : `cron ${schedule.cron ?? '?'}`;
}
