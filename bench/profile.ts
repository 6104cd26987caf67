// Summarises a V8 CPU profile (.cpuprofile, as written by `node --cpu-prof`): where the process spent its time, by
// area (ctbridge module, npm package, Node internals, GC) and by function, self time only. `npm run bench --
// --profile` writes one profile per ctbridge run and prints these summaries; `node bench/profile.ts FILE` prints one.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  areas: Array<{ name: string; ms: number }>;
  functions: Array<{ name: string; ms: number }>;
  /** Inclusive time of ctbridge's own functions (src/): what a slow path is, in the project's terms. */
  ownInclusive: Array<{ name: string; ms: number }>;
}

/** Which part of the program a script URL belongs to. */
function areaOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  const own = /\/(src|bin|bench)\/(.+)$/.exec(url);
  if (own) return `${own[1]}/${own[2]}`;
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  return basename(url);
}

export function summarizeProfile(path: string, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMs = new Map<number, number>();
  profile.samples.forEach((id, index) => selfMs.set(id, (selfMs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0) / 1000));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const frameName = (frame: ProfileNode['callFrame']) => `${frame.functionName || '(anonymous)'} ${frame.url ? `${areaOf(frame.url, '')}:${frame.lineNumber + 1}` : ''}`.trim();
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  const ownInclusive = new Map<string, number>();
  let totalMs = 0;
  let idleMs = 0;
  for (const [id, ms] of selfMs) {
    const frame = byId.get(id)!.callFrame;
    totalMs += ms;
    if (frame.functionName === '(idle)') {
      idleMs += ms;
      continue;
    }
    const area = areaOf(frame.url, frame.functionName);
    areas.set(area, (areas.get(area) ?? 0) + ms);
    const name = frameName(frame);
    functions.set(name, (functions.get(name) ?? 0) + ms);
    const seen = new Set<string>();
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const ancestor = byId.get(at)!.callFrame;
      if (!/\/src\//.test(ancestor.url)) continue;
      const own = frameName(ancestor);
      if (seen.has(own)) continue;
      seen.add(own);
      ownInclusive.set(own, (ownInclusive.get(own) ?? 0) + ms);
    }
  }
  const sorted = (map: Map<string, number>) =>
    [...map]
      .map(([name, ms]) => ({ name, ms }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top);
  return { totalMs, idleMs, areas: sorted(areas), functions: sorted(functions), ownInclusive: sorted(ownInclusive) };
}

export function formatProfile(title: string, summary: ProfileSummary): string {
  const busy = summary.totalMs - summary.idleMs;
  const pct = (ms: number) => `${((100 * ms) / busy).toFixed(1).padStart(5)}%`;
  return [
    `${title}: ${(busy / 1000).toFixed(2)} s on CPU of ${(summary.totalMs / 1000).toFixed(2)} s profiled (self time, share of CPU time)`,
    '  by area:',
    ...summary.areas.map((a) => `    ${pct(a.ms)}  ${a.name}`),
    '  by function (self):',
    ...summary.functions.map((f) => `    ${pct(f.ms)}  ${f.name}`),
    '  ctbridge functions (inclusive: itself and what it calls, synchronous part only):',
    ...summary.ownInclusive.map((f) => `    ${pct(f.ms)}  ${f.name}`),
  ].join('\n');
}

if (import.meta.main) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node bench/profile.ts FILE.cpuprofile');
    process.exit(2);
  }
  console.log(formatProfile(basename(file), summarizeProfile(file, 25)));
}
