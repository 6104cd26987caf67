// Ometria validates pushed records asynchronously: a 200 means only "received", and what it refuses later is listed
// on GET /v2/push/_errors (the 100 newest). ctbridge counts a pushed record as delivered at once (the engine's
// outcome), keeps it in the store as waiting (`pending:<@type>:<id>`, shared by every process), and reads the error
// list after pushes — first after `firstCheckMs`, then at doubling intervals up to `maxCheckMs`, only while records
// wait. An error whose path names a waiting record (`root > contact["<id>"] > lastname`, spec/ometria/push-api.md)
// becomes a dead letter for that record or event with Ometria's message (deps.reportLateFailures); a record not
// reported within `settleMs` counts as delivered for good and stops waiting. The list is a window, not a log: the
// errors of the previous read are remembered (`errors:seen`) so only new ones count, and a read that finds a whole
// page of new errors reads again soon, since more may have scrolled past. A read costs one of the 4 requests a second
// pushes need: while the pusher is busy, a due read waits (at most `maxCheckMs` after the last one), so a backlog
// goes out at the full rate and its errors are read in the pauses.
import { withPayloadContext } from '../kit/index.ts';
import type { OmetriaClient, OmetriaError } from './client.ts';

/** What is kept of a pushed record while it waits for validation. */
export type Waiting =
  | { kind: 'record'; recordType: string; resourceId: string; correlationId: string; sentAt: number }
  | { kind: 'event'; eventType: string; dedupeKey: string; correlationId: string; sentAt: number };

const PENDING = 'pending:';
const SEEN = 'errors:seen';
const PAGE = 1_000;

export const pendingKey = (type: string, id: string) => `${PENDING}${type}:${id}`;

/** `root > contact["c-1"] > lastname` → { type, id }; undefined when the path names no record. */
export function recordOfPath(path: string): { type: string; id: string } | undefined {
  const match = /^root > ([a-z_]+)\[("(?:[^"\\]|\\.)*")\]/.exec(path);
  if (!match) return undefined;
  try {
    return { type: match[1]!, id: JSON.parse(match[2]!) as string };
  } catch {
    return undefined;
  }
}

export interface ValidationWatcher {
  /** Records pushed and answered 200: they wait for validation; a check is scheduled. */
  pushed(entries: ReadonlyArray<{ type: string; id: string; waiting: Waiting }>): Promise<void>;
  /** Reads the error list once and settles what is due; returns how many records still wait. */
  check(): Promise<number>;
  /** Schedules a check (at start-up: records a previous process left waiting). */
  wake(): void;
  close(): void;
}

export function createValidationWatcher(client: OmetriaClient, options: { busy: () => boolean } = { busy: () => false }): ValidationWatcher {
  const { firstCheckMs, maxCheckMs, settleMs } = client.settings.validation;
  let timer: NodeJS.Timeout | undefined;
  let delay = firstCheckMs;
  let lastCheckAt = client.now();
  let running: Promise<number> | undefined;
  let closed = false;

  const schedule = (ms: number) => {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      // Pushes use the request budget: try again shortly, unless the last read is a whole `maxCheckMs` ago.
      if (options.busy() && client.now() - lastCheckAt < maxCheckMs) {
        schedule(Math.min(firstCheckMs || 1, maxCheckMs));
        return;
      }
      void watcher.check().then(
        (waiting) => {
          if (waiting > 0) {
            delay = Math.min(delay * 2 || 1, maxCheckMs);
            schedule(delay);
          } else delay = firstCheckMs;
        },
        (error: unknown) => {
          client.logger.warn({ err: error }, 'reading Ometria\'s validation errors failed; tried again later');
          delay = Math.min(delay * 2 || 1, maxCheckMs);
          schedule(delay);
        },
      );
    }, ms);
    timer.unref();
  };

  async function checkOnce(): Promise<number> {
    lastCheckAt = client.now();
    // Made for no item of its own (whichever batch woke the timer): the payload log files it under none.
    const errors = await withPayloadContext([], () => client.listErrors());
    const fresh = newErrors(errors, (await client.state.get([SEEN])).get(SEEN) as string[] | undefined);
    await client.state.put([{ key: SEEN, value: errors.map(fingerprint) }]);
    // A whole page of new errors: more may have scrolled past; read again soon.
    if (fresh.length >= errors.length && errors.length >= 100) delay = firstCheckMs;

    const refused = new Map<string, OmetriaError>();
    for (const error of fresh) {
      const record = recordOfPath(error.error_path);
      if (record) refused.set(pendingKey(record.type, record.id), error);
      else client.logger.warn({ path: error.error_path }, 'Ometria reported a validation error that names no record: it cannot be attributed');
    }
    if (refused.size > 0) {
      const waiting = await client.state.get([...refused.keys()]);
      // Whoever takes the entry reports it: another process reading the same list reports it no second time.
      const taken = await client.state.take([...waiting.keys()]);
      await client.reportLateFailures(
        taken.map((key) => {
          const entry = waiting.get(key) as Waiting;
          const error = refused.get(key)!;
          const message = `Ometria: ${error.error_message} (at ${error.error_path})`;
          return entry.kind === 'record' ? { ...entry, error: message } : { ...entry, error: message };
        }),
      );
    }

    // Settle what waited long enough, and count what still waits.
    const now = client.now();
    let stillWaiting = 0;
    let after: string | undefined;
    for (;;) {
      const page = await client.state.list(PENDING, { limit: PAGE, ...(after !== undefined && { after }) });
      if (page.length === 0) break;
      after = page.at(-1)!.key;
      const settled = page.filter((entry) => (entry.value as Waiting).sentAt + settleMs <= now).map((entry) => entry.key);
      if (settled.length > 0) await client.state.take(settled);
      stillWaiting += page.length - settled.length;
      if (page.length < PAGE) break;
    }
    return stillWaiting;
  }

  const watcher: ValidationWatcher = {
    async pushed(entries) {
      if (entries.length === 0) return;
      await client.state.put(entries.map((entry) => ({ key: pendingKey(entry.type, entry.id), value: entry.waiting })));
      schedule(firstCheckMs);
    },
    check() {
      // One read at a time per process.
      running ??= checkOnce().finally(() => (running = undefined));
      return running;
    },
    wake: () => schedule(firstCheckMs),
    close() {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
    },
  };
  return watcher;
}

const fingerprint = (error: OmetriaError) => `${error.error_path}\u0000${error.error_message}`;

/**
 * The errors of this read that the previous read did not show: as many of each as there are more of them now (the
 * same record refused again after a replay is new; one that scrolled off is gone from both counts).
 */
function newErrors(errors: readonly OmetriaError[], seenBefore: readonly string[] | undefined): OmetriaError[] {
  const before = new Map<string, number>();
  for (const print of seenBefore ?? []) before.set(print, (before.get(print) ?? 0) + 1);
  const fresh: OmetriaError[] = [];
  for (const error of errors) {
    const print = fingerprint(error);
    const left = before.get(print) ?? 0;
    if (left > 0) before.set(print, left - 1);
    else fresh.push(error);
  }
  return fresh;
}
