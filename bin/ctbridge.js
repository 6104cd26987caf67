#!/usr/bin/env node
// The ctbridge command. Node 24 runs the TypeScript sources directly (type stripping), so there is no build step.
import { enableCompileCache } from 'node:module';
import process from 'node:process';

// `ctbridge start` is a long-running service: it restarts itself once, in place (same pid, so signals and
// supervisors are unaffected), with a young generation of 4 MB per semi-space instead of V8's default of up to
// 32 MB. Ingest garbage is short-lived, so scavenges stay cheap, and the process needs far less memory. An
// operator's own setting (on the command line or in NODE_OPTIONS) is left alone.
const YOUNG_GENERATION_FLAG = '--max-semi-space-size';
const tuned = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((flag) => flag.includes(YOUNG_GENERATION_FLAG));
if (process.argv[2] === 'start' && !tuned && typeof process.execve === 'function') {
  process.execve(process.execPath, [process.execPath, `${YOUNG_GENERATION_FLAG}=4`, ...process.execArgv, ...process.argv.slice(1)], process.env);
}

// The compiled (type-stripped) sources are cached on disk, keyed by content: later starts skip both the
// TypeScript transform and the memory its compiler takes.
enableCompileCache();
await import('../src/cli/main.ts');
