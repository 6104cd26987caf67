// Schedules (config/schedule.ts): durations, cron expressions (fields, ranges, steps, names, the day-of-month /
// day-of-week rule, macros) and when each is next due, in UTC; wrong ones refused with the part that is wrong; and
// the sync settings that use them (config/sync.ts), checked in the configuration with their location.
import { describe, expect, it } from 'vitest';
import { cronSchema, nextRun, parseCron, parseDuration, scheduleSchema } from '../src/config/schedule.ts';
import { configSchema } from '../src/config/schema.ts';
import { scheduledSyncs, syncScopeWarnings } from '../src/config/sync.ts';
import { ConfigError, parseConfigText } from '../src/config/load.ts';

const at = (iso: string) => new Date(iso);
const next = (cron: string, after: string) => nextRun({ cron }, at(after)).toISOString();

describe('durations', () => {
  it('reads units and sums of them, and refuses anything else', () => {
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('1d')).toBe(86_400_000);
    expect(parseDuration('250ms')).toBe(250);
    for (const bad of ['', '5', 'm', '5 m', '-5m', '0s', '5w', '1.5h']) expect(parseDuration(bad)).toBeUndefined();
  });

  it('an interval is due that long after the moment given', () => {
    expect(nextRun({ every: '5m' }, at('2026-03-01T10:02:30Z')).toISOString()).toBe('2026-03-01T10:07:30.000Z');
    expect(nextRun({ every: '24h' }, at('2026-03-01T10:00:00Z')).toISOString()).toBe('2026-03-02T10:00:00.000Z');
  });
});

describe('cron expressions', () => {
  it('steps, ranges and lists of minutes and hours', () => {
    expect(next('*/5 * * * *', '2026-03-01T10:02:30Z')).toBe('2026-03-01T10:05:00.000Z');
    // Strictly after: a moment on the minute gives the next one.
    expect(next('*/5 * * * *', '2026-03-01T10:05:00Z')).toBe('2026-03-01T10:10:00.000Z');
    expect(next('0 9-17/4 * * *', '2026-03-01T13:00:00Z')).toBe('2026-03-01T17:00:00.000Z');
    expect(next('15,45 3 * * *', '2026-03-01T03:20:00Z')).toBe('2026-03-01T03:45:00.000Z');
    expect(next('5/20 * * * *', '2026-03-01T10:26:00Z')).toBe('2026-03-01T10:45:00.000Z');
    // Past the last hour of the day: the first of the next day.
    expect(next('30 2 * * *', '2026-03-01T02:30:00Z')).toBe('2026-03-02T02:30:00.000Z');
  });

  it('days of month, months and days of week, by number or name, with Sunday as 0 or 7', () => {
    // 2026-03-01 is a Sunday.
    expect(next('0 8 * * MON-FRI', '2026-02-28T12:00:00Z')).toBe('2026-03-02T08:00:00.000Z');
    expect(next('0 0 * * 7', '2026-03-02T00:00:00Z')).toBe('2026-03-08T00:00:00.000Z');
    expect(next('0 0 * * sun', '2026-03-02T00:00:00Z')).toBe('2026-03-08T00:00:00.000Z');
    expect(next('0 0 1 JAN,jul *', '2026-03-01T00:00:00Z')).toBe('2026-07-01T00:00:00.000Z');
    // The 31st: months without one are skipped.
    expect(next('0 12 31 * *', '2026-03-31T12:00:00Z')).toBe('2026-05-31T12:00:00.000Z');
    // The 29th of February: the next leap year.
    expect(next('0 0 29 2 *', '2026-03-01T00:00:00Z')).toBe('2028-02-29T00:00:00.000Z');
  });

  it('with both day fields restricted a day matching either runs, as cron does', () => {
    // The 15th, or any Monday: Monday 2026-03-02 comes first.
    expect(next('0 0 15 * 1', '2026-03-01T00:00:00Z')).toBe('2026-03-02T00:00:00.000Z');
    expect(next('0 0 15 * 1', '2026-03-09T00:00:00Z')).toBe('2026-03-15T00:00:00.000Z');
    // One of them *: only the other restricts.
    expect(next('0 0 15 * *', '2026-03-02T00:00:00Z')).toBe('2026-03-15T00:00:00.000Z');
  });

  it('macros', () => {
    expect(next('@hourly', '2026-03-01T10:02:00Z')).toBe('2026-03-01T11:00:00.000Z');
    expect(next('@daily', '2026-03-01T10:02:00Z')).toBe('2026-03-02T00:00:00.000Z');
    expect(next('@weekly', '2026-03-01T10:02:00Z')).toBe('2026-03-08T00:00:00.000Z');
    expect(next('@monthly', '2026-03-01T10:02:00Z')).toBe('2026-04-01T00:00:00.000Z');
    expect(parseCron('@yearly')).toEqual(parseCron('0 0 1 1 *'));
  });

  it('refuses what is wrong, naming the field and the part', () => {
    const problem = (expression: string) => {
      const result = cronSchema.safeParse(expression);
      return result.success ? undefined : result.error.issues[0]?.message;
    };
    expect(problem('*/5 * * *')).toBe('a cron expression has 5 fields (minute hour day-of-month month day-of-week), e.g. "*/5 * * * *"; got 4');
    expect(problem('0 24 * * *')).toBe('hour field "24": 24 is out of range 0-23');
    expect(problem('0 0 0 * *')).toBe('day of month field "0": 0 is out of range 1-31');
    expect(problem('0 0 * 13 *')).toBe('month field "13": 13 is out of range 1-12');
    expect(problem('0 0 * FOO *')).toBe('month field "FOO": "FOO" is not a number or a name (JAN, FEB, MAR, APR, MAY, JUN, JUL, AUG, SEP, OCT, NOV, DEC)');
    expect(problem('10-5 * * * *')).toBe('minute field "10-5": the range 10-5 runs backwards');
    expect(problem('*/0 * * * *')).toBe('minute field "*/0": a step is at least 1');
    expect(problem('1,,2 * * * *')).toBe('minute field "1,,2": "" is not a value, a range a-b, * or a step (*/n, a-b/n)');
    expect(problem('0 0 30 2 *')).toBe('the expression matches no date (a day that no month has?)');
    expect(problem('*/15 * * * *')).toBeUndefined();
  });

  it('a schedule takes every or cron, exactly one', () => {
    expect(scheduleSchema.safeParse({ every: '24h' }).success).toBe(true);
    expect(scheduleSchema.safeParse({ cron: '@daily' }).success).toBe(true);
    expect(scheduleSchema.safeParse({}).error?.issues.map((i) => i.message)).toEqual(['a schedule needs every (e.g. 5m) or cron (e.g. "*/5 * * * *")']);
    expect(scheduleSchema.safeParse({ every: '5m', cron: '@daily' }).error?.issues.map((i) => i.message)).toEqual(['a schedule takes every or cron, not both']);
  });
});

describe('sync settings in the configuration', () => {
  const base = {
    commercetools: { projectKey: 'p', authUrl: 'http://127.0.0.1:1', apiUrl: 'http://127.0.0.1:1', clientId: 'c', clientSecret: 's' },
    server: { ingest: { auth: { type: 'none' } } },
  };
  const sink = (extra: Record<string, unknown>) => ({ name: 'sink', type: 'http', url: 'http://127.0.0.1:9/records', ...extra });
  const records = { customer: { fields: { email: 'email' } }, order: { fields: { orderNumber: 'orderNumber' } } };

  it('a destination\'s schedule applies to its record types, a record type\'s own replaces it', () => {
    const config = configSchema.parse({
      ...base,
      destinations: [
        sink({ sync: { mode: 'scheduled', every: '5m' }, records: { ...records, order: { ...records.order, sync: { mode: 'scheduled', cron: '0 * * * *', overlap: '10m' } } } }),
        sink({ name: 'live', records: { ...records, customer: { ...records.customer, sync: { mode: 'scheduled', every: '1h' } } } }),
        sink({ name: 'events', sync: { mode: 'events' }, records }),
      ],
    });
    expect(scheduledSyncs(config.destinations)).toEqual([
      { destination: 'sink', recordType: 'customer', every: '5m', cron: undefined, overlapMs: 120_000 },
      { destination: 'sink', recordType: 'order', every: undefined, cron: '0 * * * *', overlapMs: 600_000 },
      { destination: 'live', recordType: 'customer', every: '1h', cron: undefined, overlapMs: 120_000 },
    ]);
  });

  it('wrong settings are reported where they are written, as config check prints them', () => {
    const yaml = `
commercetools: { projectKey: p, authUrl: "http://127.0.0.1:1", apiUrl: "http://127.0.0.1:1", clientId: c, clientSecret: s }
server: { ingest: { auth: { type: none } } }
destinations:
  - name: sink
    type: http
    url: http://127.0.0.1:9/records
    sync: { mode: scheduled }
    records:
      order: { fields: { orderNumber: orderNumber }, sync: { mode: scheduled, every: 5 minutes } }
  - name: two
    type: http
    url: http://127.0.0.1:9/records
    sync: { mode: events, every: 5m }
    records:
      customer: { fields: { email: email }, sync: { mode: scheduled, cron: "0 25 * * *", overlap: long } }
  - name: three
    type: http
    url: http://127.0.0.1:9/records
    sync: { mode: hourly }
    records: { customer: { fields: { email: email } } }
`;
    let problems: Array<{ path: string; message: string }> = [];
    try {
      parseConfigText(yaml, 'ctbridge.yaml', {});
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      problems = (error as ConfigError).problems;
    }
    expect(problems).toEqual([
      { path: 'destinations[0].sync.every', message: 'a scheduled sync needs every (e.g. 5m) or cron (e.g. "*/5 * * * *")' },
      { path: 'destinations[0].records.order.sync.every', message: 'a duration such as 30s, 5m, 1h30m or 1d (units ms, s, m, h, d), greater than zero' },
      { path: 'destinations[1].sync.every', message: 'every applies to mode: scheduled (this sync is mode: events)' },
      { path: 'destinations[1].records.customer.sync.cron', message: 'hour field "25": 25 is out of range 0-23' },
      { path: 'destinations[1].records.customer.sync.overlap', message: 'a duration such as 30s, 5m, 1h30m or 1d (units ms, s, m, h, d), greater than zero' },
      { path: 'destinations[2].sync.mode', message: expect.stringContaining('"events"') as string },
    ]);
  });

  it('warns when the scopes cannot read deletions for a scheduled sync', () => {
    const destinations = configSchema.parse({
      ...base,
      destinations: [sink({ sync: { mode: 'scheduled', every: '5m' }, records: { ...records, payment: { fields: { id: 'id' } } } })],
    }).destinations;
    expect(syncScopeWarnings(['view_customers:p', 'view_orders:p'], destinations)).toEqual([
      'commercetools.scopes: scheduled sync reads deletions from the Messages API (view_messages) once it has seen that the project keeps them (view_project_settings); without view_messages and view_project_settings deletions are reported as not detectable',
    ]);
    expect(syncScopeWarnings(['view_customers:p', 'view_messages:p', 'view_project_settings:p'], destinations)).toEqual([]);
    expect(syncScopeWarnings(['manage_project:p'], destinations)).toEqual([]);
    // Only payments scheduled: they have no deletion Message to read.
    const payments = configSchema.parse({ ...base, destinations: [sink({ records: { payment: { fields: { id: 'id' }, sync: { mode: 'scheduled', every: '5m' } } } })] }).destinations;
    expect(syncScopeWarnings(['view_payments:p'], payments)).toEqual([]);
  });
});
