// The sweeper of agent actions `ctbridge start` runs: finds calls whose process died mid-call (their row still in
// progress, its lease run out) and that no retry came for, and settles each through ActionsService.sweep — the
// planned writes found in commercetools → done, none → the key given back (an approval back to pending). Which
// process settles a row is decided by its lease in the store (a compare-and-set take-over, as a retry takes it), so
// processes sharing a store never settle one twice. `tick()` does one round, so tests drive it without waiting.
import type { Logger } from 'pino';
import type { ActionsService } from './service.ts';

export interface ActionsSweeper {
  start(): void;
  /** One round: settles what has been abandoned by now; how each row ended. */
  tick(): ReturnType<ActionsService['sweep']>;
  stop(): Promise<void>;
}

export function createActionsSweeper(options: { service: ActionsService; logger: Logger; leaseSeconds: number }): ActionsSweeper {
  const { service, logger } = options;
  // Half a lease: a dead call's row is settled within one and a half leases of its last renewal.
  const everyMs = Math.min(60_000, options.leaseSeconds * 500);
  let timer: NodeJS.Timeout | undefined;
  let round: Promise<unknown> | undefined;
  let stopped = true;

  const tick: ActionsSweeper['tick'] = async () => {
    const outcomes = await service.sweep();
    if (outcomes.length > 0) logger.info({ component: 'actions', settled: outcomes }, 'settled agent actions whose process died');
    return outcomes;
  };

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      const loop = () => {
        round = tick()
          .catch((error: unknown) => logger.warn({ component: 'actions', err: error }, 'looking for agent actions whose process died failed; tried again shortly'))
          .finally(() => {
            if (!stopped) timer = setTimeout(loop, everyMs);
          });
      };
      timer = setTimeout(loop, everyMs);
    },
    tick,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await round;
    },
  };
}
