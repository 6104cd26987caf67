// Commands that run ctbridge: `start` (server and workers until SIGTERM), `migrate`, and `ingest FILE|-`, which
// feeds payloads through the same normalise-and-commit path as the HTTP endpoint (a running ctbridge sharing the
// store delivers them).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { createLogger } from '../observability/logger.ts';
import { startRuntime, type Runtime, type RuntimeOptions } from '../runtime.ts';
import { openStore } from '../store/store.ts';
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
      const documents = parseDocuments(text, file === '-' ? 'stdin' : file);
      const runtime = await startRuntime({ config, logger: createLogger({ level: 'warn' }), listen: false, work: false });
      const totals = { accepted: 0, quarantined: 0, ignored: 0 };
      try {
        // Each document is one request's worth; a page of them shares group commits.
        for (let index = 0; index < documents.length; index += 500) {
          const results = await Promise.all(documents.slice(index, index + 500).map((text) => runtime.ingest.ingest({ raw: Buffer.from(text), source: 'cli' })));
          for (const result of results) {
            // Every document was parsed above, so none is malformed JSON here.
            if (!result.ok) continue;
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
      console.log(`accepted ${totals.accepted} (duplicates among them are dropped when routed), quarantined ${totals.quarantined}, ignored ${totals.ignored}`);
    });
}

/** One JSON document, or one per line (NDJSON); a line that is not JSON is reported with its number. */
function parseDocuments(text: string, source: string): string[] {
  try {
    JSON.parse(text);
    return [text];
  } catch {
    const documents: string[] = [];
    text.split('\n').forEach((line, index) => {
      if (line.trim() === '') return;
      try {
        JSON.parse(line);
        documents.push(line);
      } catch (error) {
        exitWithError(new Error(`${source}:${index + 1}: not valid JSON (${(error as Error).message})`));
      }
    });
    return documents;
  }
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
