// `ctbridge payloads --record ID`: the calls destinations with a payload log (`payloadLog:`) made for a record —
// when, which destination, method and URL, the status, the correlation id, and the request and response bodies
// as they were kept (personal values masked or dropped, secrets never: observability/payload-log.ts).
import type { Command } from 'commander';
import { payloadsOf } from '../store/payload-log.ts';
import { configOption, exitUsage, withStore } from './common.ts';

export function registerPayloadCommands(program: Command): void {
  program
    .command('payloads')
    .description('the request and response bodies of the calls made for a record, in destinations with payloadLog enabled')
    .requiredOption('--record <id>', 'the commercetools resource id')
    .option('--destination <name>', 'only this destination')
    .option('--limit <n>', 'the newest N calls', '50')
    .option('--json', 'print JSON')
    .addOption(configOption())
    .action((options: { record: string; destination?: string; limit: string; json?: boolean; config?: string }) =>
      withStore(options, async (store, config) => {
        const limit = Number(options.limit);
        if (!Number.isInteger(limit) || limit < 1) return exitUsage(`--limit must be a whole number above 0 (got "${options.limit}")`);
        if (options.destination !== undefined && !config.destinations.some((d) => d.name === options.destination)) {
          return exitUsage(`--destination: no destination is named "${options.destination}" (${config.destinations.map((d) => d.name).join(', ') || 'none configured'})`);
        }
        const rows = await payloadsOf(store.db, options.record, { limit, destination: options.destination });
        const calls = rows.map((row) => ({
          at: new Date(Number(row.at)).toISOString(),
          destination: row.destination,
          kind: row.kind,
          itemType: row.item_type,
          correlationId: row.correlation_id,
          method: row.method,
          url: row.url,
          status: row.status,
          durationMs: row.duration_ms,
          request: parsed(row.request_body),
          response: parsed(row.response_body),
          error: row.error,
        }));
        if (options.json) return console.log(JSON.stringify({ record: options.record, calls }, null, 2));
        if (calls.length === 0) {
          const logging = config.destinations.filter((d) => d.payloadLog?.enabled).map((d) => d.name);
          return console.log(`no calls logged for ${options.record}${logging.length === 0 ? ' (no destination has payloadLog enabled)' : ` (payload log kept by ${logging.join(', ')})`}`);
        }
        for (const call of calls) {
          console.log(`${call.at}  ${call.destination}  ${call.itemType ?? '-'}  ${call.method} ${call.url}  → ${call.status ?? call.error ?? 'no answer'}  ${call.durationMs} ms  ${call.correlationId ?? ''}`);
          if (call.request !== null) console.log(`  request:  ${JSON.stringify(call.request)}`);
          if (call.response !== null) console.log(`  response: ${JSON.stringify(call.response)}`);
        }
      }),
    );
}

/** A kept body: JSON when it is, else its text. */
function parsed(body: string | null): unknown {
  if (body === null) return null;
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}
