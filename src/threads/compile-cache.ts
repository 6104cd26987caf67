// Letting go of Node's compile cache once a thread has loaded its code. With NODE_COMPILE_CACHE set (bin/ctbridge.js
// sets it for `ctbridge start`), every isolate keeps, for each module it loaded, the code cache read from disk
// (and, for a .ts file, its type-stripped source) until the thread ends, when it writes what changed back to
// disk; in a long-running service that is megabytes per thread held for nothing once start-up is over. Flushing
// writes what changed now (so the next start finds it) and frees those entries; a module loaded later (one
// loaded on first use) makes a new, small entry.
import { flushCompileCache } from 'node:module';

/** Writes this thread's new compile cache entries to disk and frees them all (nothing to do without a cache). */
export function releaseCompileCache(): void {
  flushCompileCache();
}
