#!/usr/bin/env node
// The ctbridge command. Node 24 runs the TypeScript sources directly (type stripping), so there is no build step.
import { enableCompileCache } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';

// `ctbridge start` is a long-running service: it restarts itself once, in place (same pid, so signals and
// supervisors are unaffected), with settings for a small footprint. A setting the operator made (a flag on the
// command line or in NODE_OPTIONS, an environment variable) is left alone.
// - V8 heaps: the main thread only answers HTTP (ingest and the admin API; the engine and ingest threads have their
//   own heaps). Its garbage is short-lived, so a young generation of 2 MB per semi-space (V8 allows up to 32 MB)
//   keeps scavenges cheap and memory low; a 64 MB old generation makes V8 collect instead of growing (it holds
//   about 25 MB of code and configuration, and bodies in flight are buffers outside the heap, bounded by
//   server.maxInFlightBytes).
// - V8's garbage-collection helper threads: by default 4, whatever the machine; more helpers than spare cores only
//   take turns with the threads that answer requests.
const HEAP_DEFAULTS = {
  '--max-semi-space-size': '2',
  '--max-old-space-size': '64',
  '--v8-pool-size': String(Math.min(4, Math.max(1, availableParallelism() - 1))),
};
// - glibc malloc: request bodies are 100-200 KB buffers allocated and freed on several threads; with one arena per
//   thread and the mmap threshold rising after each freed large buffer, freed memory stays in the process.
// - The compiled (type-stripped) sources are cached on disk, keyed by content: later starts skip both the
//   TypeScript transform and the memory its compiler takes. Only the environment variable reaches worker threads
//   (enableCompileCache() covers the thread that calls it), and `start` runs two of them. Each thread lets go of
//   the cache's in-memory copy once it is up (src/threads/compile-cache.ts).
const ENV_DEFAULTS = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072', NODE_COMPILE_CACHE: join(tmpdir(), 'node-compile-cache') };
// V8 takes `--max_old_space_size` as well as `--max-old-space-size`; compare whole flag names.
const given = new Set(
  [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].map((arg) => arg.split('=')[0].replaceAll('_', '-')),
);
const missingFlags = Object.entries(HEAP_DEFAULTS).filter(([flag]) => !given.has(flag));
const missingEnv = Object.entries(ENV_DEFAULTS).filter(([name]) => process.env[name] === undefined);
if (process.argv[2] === 'start' && (missingFlags.length > 0 || missingEnv.length > 0) && typeof process.execve === 'function') {
  const flags = missingFlags.map(([flag, value]) => `${flag}=${value}`);
  process.execve(process.execPath, [process.execPath, ...flags, ...process.execArgv, ...process.argv.slice(1)], { ...process.env, ...Object.fromEntries(missingEnv) });
}

enableCompileCache();
await import('../src/cli/main.ts');
