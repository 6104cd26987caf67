// How a backfill's progress reads on the command line: a bar redrawn in place on a terminal, or a plain line for
// logs (not a TTY). No total is known up front (commercetools is read with withTotal=false), so the bar shows the
// share of what was read that the engine has finished, and the ETA the time the queued rest takes at this rate.
import type { BackfillProgress } from './backfills.ts';

const BAR = 24;

export function progressLine(p: BackfillProgress, options: { bar: boolean }): string {
  const n = (value: number) => value.toLocaleString('en');
  const finished = p.delivered + p.failed;
  const share = p.read === 0 ? 0 : Math.min(1, finished / p.read);
  const bar = options.bar ? `[${'#'.repeat(Math.round(share * BAR)).padEnd(BAR, '.')}] ` : '';
  const rate = p.ratePerSecond === null ? '-' : `${n(p.ratePerSecond)}/s`;
  const eta = p.etaSeconds === null ? (p.phase === 'reading' ? 'reading' : '-') : `${p.etaSeconds}s`;
  return `${bar}${p.phase} read ${n(p.read)} queued ${n(p.queued)} delivered ${n(p.delivered)} failed ${n(p.failed)} ${rate} ETA ${eta}`;
}

export function summaryLine(p: BackfillProgress): string {
  const seconds = p.finishedAt === null ? null : (Date.parse(p.finishedAt) - Date.parse(p.createdAt)) / 1000;
  return `backfill ${p.id} ${p.state}: read ${p.read}, queued ${p.queued}, delivered ${p.delivered}, dead letters ${p.failed}${seconds === null ? '' : `, ${seconds.toFixed(1)} s`}${p.error ? ` (${p.error})` : ''}`;
}
