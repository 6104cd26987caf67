#!/usr/bin/env node
// The ctbridge command. Node 24 runs the TypeScript sources directly (type stripping), so there is no build step.
import { enableCompileCache } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';

// `ctbridge start` is a long-running service: it restarts itself once, in place (same pid, so signals and
// supervisors are unaffected), with V8 heap settings for a small footprint. Ingest garbage is short-lived, so a
// young generation of 2 MB per semi-space (V8 allows up to 32 MB) keeps scavenges cheap and memory low; a
// bounded old generation makes V8 collect instead of growing, and the ingest in-flight bound
// (server.maxInFlightBytes) keeps the live data far below it. A flag the operator set (on the command line or in
// NODE_OPTIONS) is left alone.
const HEAP_DEFAULTS = { '--max-semi-space-size': '2', '--max-old-space-size': '96' };
// V8 takes `--max_old_space_size` as well as `--max-old-space-size`; compare whole flag names.
const given = new Set(
  [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].map((arg) => arg.split('=')[0].replaceAll('_', '-')),
);
const missing = Object.entries(HEAP_DEFAULTS).filter(([flag]) => !given.has(flag));
// The compiled (type-stripped) sources are cached on disk, keyed by content: later starts skip both the
// TypeScript transform and the memory its compiler takes. Only the environment variable reaches worker threads
// (enableCompileCache() covers the thread that calls it), and `start` runs three of them.
const cacheMissing = process.env.NODE_COMPILE_CACHE === undefined;
if (process.argv[2] === 'start' && (missing.length > 0 || cacheMissing) && typeof process.execve === 'function') {
  const flags = missing.map(([flag, value]) => `${flag}=${value}`);
  const env = cacheMissing ? { ...process.env, NODE_COMPILE_CACHE: join(tmpdir(), 'node-compile-cache') } : process.env;
  process.execve(process.execPath, [process.execPath, ...flags, ...process.execArgv, ...process.argv.slice(1)], env);
}

enableCompileCache();
await import('../src/cli/main.ts');
