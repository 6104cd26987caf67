// Commands that run ctbridge: `start` (server and workers until SIGTERM), `migrate`, and `ingest FILE|-`, which
// feeds payloads through the same normalise-and-commit path as the HTTP endpoint (a running ctbridge sharing the
// store delivers them).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { IngestResult } from '../ingest/ingest-service.ts';
import { createLogger } from '../observability/logger.ts';
import { startRuntime, type Runtime, type RuntimeOptions } from '../runtime.ts';
import { openStore } from '../store/store.ts';
import { releaseCompileCache } from '../threads/compile-cache.ts';
import { configOption, exitWithError, loadConfigOrExit } from './common.ts';

/** Starts ctbridge and logs where it listens, its store (without credentials: see Store.location) and destinations. */
export async function startAndAnnounce(options: RuntimeOptions): Promise<Runtime> {
  const runtime = await startRuntime(options);
  options.logger.info({ url: runtime.url, store: runtime.store.location, destinations: options.config.destinations.map((d) => d.name) }, 'ctbridge started');
  return runtime;
}

export function registerRunCommands(program: Command): void {
  program
    .command('start')
    .description('run the ingest server and the sync workers until SIGTERM/SIGINT')
    .addOption(configOption())
    .action(async (options: { config?: string }) => {
      const config = loadConfigOrExit(options);
      const logger = createLogger();
      const runtime = await startAndAnnounce({ config, logger, engineThread: true }).catch(exitWithError);
      // This thread's code is loaded (the engine and ingest threads release theirs when they are ready).
      releaseCompileCache();
      await untilSignal();
      logger.info('stopping: no new work is claimed, work in flight finishes');
      await runtime.stop();
      logger.info('stopped');
    });

  program
    .command('migrate')
    .description('apply the store migrations (start does this too)')
    .addOption(configOption())
    .action(async (options: { config?: string }) => {
      const config = loadConfigOrExit(options);
      const store = openStore(config.store);
      try {
        const pending = await store.pendingMigrations();
        await store.migrate();
        console.log(pending.length > 0 ? `applied ${pending.join(', ')} to ${store.location}` : `${store.location} is up to date`);
      } finally {
        await store.close();
      }
    });

  program
    .command('ingest')
    .description('ingest commercetools payloads from a file (a JSON document, an array, or one JSON document per line) or - for stdin')
    .argument('<file>', 'file path, or - for standard input')
    .addOption(configOption())
    .action(async (file: string, options: { config?: string }) => {
      const config = loadConfigOrExit(options);
      let text: string;
      try {
        text = readFileSync(file === '-' ? 0 : file, 'utf8');
      } catch (error) {
        return exitWithError(new Error(`cannot read ${file}: ${(error as Error).message}`));
      }
      const documents = parseDocuments(text, file === '-' ? 'stdin' : file, { maxItems: config.server.maxItemsPerBody, maxBytes: config.server.bodyLimit });
      const runtime = await startRuntime({ config, logger: createLogger({ level: 'warn' }), listen: false, work: false });
      const totals = { accepted: 0, quarantined: 0, ignored: 0, refused: 0 };
      try {
        // Each document is one request's worth; a page of them shares group commits.
        for (let index = 0; index < documents.length; index += 500) {
          // The bounds a request has over HTTP (a body the engine can read within its memory) hold here too.
          const ingest = (text: string): Promise<IngestResult | { ok: false; detail: string }> =>
            Buffer.byteLength(text) > config.server.bodyLimit ? Promise.resolve({ ok: false, detail: `larger than server.bodyLimit (${config.server.bodyLimit} bytes)` }) : runtime.ingest.ingest({ raw: Buffer.from(text), source: 'cli' });
          const results = await Promise.all(documents.slice(index, index + 500).map(ingest));
          for (const [offset, result] of results.entries()) {
            // Every document was parsed above and long arrays split, so a refusal is a nested body over the limit.
            if (!result.ok) {
              totals.refused += 1;
              process.stderr.write(`document ${index + offset + 1} not ingested: ${result.detail}\n`);
              continue;
            }
            const { outcome } = result;
            totals.accepted += outcome.accepted;
            totals.quarantined += outcome.quarantined;
            totals.ignored += outcome.ignored;
          }
          if (documents.length > 500) process.stderr.write(`\r${Math.min(index + 500, documents.length)}/${documents.length} documents`);
        }
        if (documents.length > 500) process.stderr.write('\n');
      } finally {
        await runtime.stop();
      }
      console.log(`accepted ${totals.accepted} (duplicates among them are dropped when routed), quarantined ${totals.quarantined}, ignored ${totals.ignored}${totals.refused > 0 ? `, ${totals.refused} document(s) refused` : ''}`);
      if (totals.refused > 0) process.exitCode = 1;
    });
}

/**
 * One JSON document, or one per line (NDJSON); a line that is not JSON is reported with its number. An array
 * larger than one body may be (server.maxItemsPerBody items, server.bodyLimit bytes) is ingested as several.
 */
function parseDocuments(text: string, source: string, limits: { maxItems: number; maxBytes: number }): string[] {
  const split = (document: string, value: unknown): string[] => {
    if (!Array.isArray(value) || (value.length <= limits.maxItems && Buffer.byteLength(document) <= limits.maxBytes)) return [document];
    const bodies: string[] = [];
    let chunk: string[] = [];
    let bytes = 2;
    for (const element of value) {
      const encoded = JSON.stringify(element) ?? 'null';
      const size = Buffer.byteLength(encoded) + 1;
      if (chunk.length > 0 && (chunk.length >= limits.maxItems || bytes + size > limits.maxBytes)) {
        bodies.push(`[${chunk.join(',')}]`);
        chunk = [];
        bytes = 2;
      }
      chunk.push(encoded);
      bytes += size;
    }
    if (chunk.length > 0) bodies.push(`[${chunk.join(',')}]`);
    return bodies;
  };
  let whole: unknown;
  try {
    whole = JSON.parse(text);
  } catch {
    const documents: string[] = [];
    text.split('\n').forEach((line, index) => {
      if (line.trim() === '') return;
      try {
        documents.push(...split(line, JSON.parse(line)));
      } catch (error) {
        exitWithError(new Error(`${source}:${index + 1}: not valid JSON (${(error as Error).message})`));
      }
    });
    return documents;
  }
  return split(text, whole);
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handler = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', handler);
      process.off('SIGINT', handler);
      resolve(signal);
    };
    process.on('SIGTERM', handler);
    process.on('SIGINT', handler);
  });
}
