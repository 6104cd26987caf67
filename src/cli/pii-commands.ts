// Commands about personal data and accountability: `audit` (a record's history of changes ctbridge made),
// `tokens rotate` (re-encrypt the token vault under the active key) and `erase` (a customer's data, everywhere).
import type { Command } from 'commander';
import { auditOf } from '../store/audit-log.ts';
import { piiKeysLoader } from '../pii/keys.ts';
import { randomUUID } from 'node:crypto';
import { carryOutErasures, requestErasure } from '../engine/erasure.ts';
import { configOption, exitUsage, withStore } from './common.ts';

export function registerPiiCommands(program: Command): void {
  program
    .command('audit')
    .description('the changes ctbridge made (or failed to make) for a record in every destination, and the agent actions on an order: when, which fields, the outcome')
    .option('--record <id>', 'the commercetools resource id')
    .option('--order <id>', 'an order id: the same, including every agent action on it (actor, role, amounts, reason, idempotency key, versions)')
    .option('--limit <n>', 'the newest N entries', '200')
    .option('--json', 'print JSON')
    .addOption(configOption())
    .action((options: { record?: string; order?: string; limit: string; json?: boolean; config?: string }) =>
      withStore(options, async (store) => {
        const limit = Number(options.limit);
        if (!Number.isInteger(limit) || limit < 1) return exitUsage(`--limit must be a whole number above 0 (got "${options.limit}")`);
        const record = options.order ?? options.record;
        if (record === undefined || (options.order !== undefined && options.record !== undefined)) return exitUsage('give one of --record <id> or --order <id>');
        const entries = await auditOf(store.db, record, limit);
        const presented = entries.map((entry) => ({
          at: new Date(entry.at).toISOString(),
          action: entry.action,
          destination: entry.destination,
          itemType: entry.item_type,
          version: entry.version,
          fields: entry.fields === null ? null : (JSON.parse(entry.fields) as string[]),
          outcome: entry.outcome,
          correlationId: entry.correlation_id,
          detail: entry.detail,
        }));
        if (options.json) return console.log(JSON.stringify({ record, entries: presented }, null, 2));
        if (presented.length === 0) return console.log(`no audit entries for ${record}`);
        for (const e of presented) {
          const what = e.fields === null ? '' : e.fields.length === 0 ? ' (no fields)' : ` ${e.fields.join(', ')}`;
          console.log(`${e.at}  ${(e.destination ?? '-').padEnd(14)} ${e.action.padEnd(14)} ${(e.itemType ?? '').padEnd(14)} v${e.version ?? '-'}  ${e.outcome}${what}  ${e.correlationId ?? ''}${e.detail ? `  ${e.detail}` : ''}`);
        }
      }),
    );

  const tokens = program.command('tokens').description('the token vault of the tokenize PII policy');
  tokens
    .command('rotate')
    .description('re-encrypt every vault token under pii.vault.activeKey (tokens stay the same); keep the old key configured until it reports none left')
    .addOption(configOption())
    .action((options: { config?: string }) =>
      withStore(options, async (store, config) => {
        if (!config.pii.vault) return exitUsage('the configuration has no pii.vault: there is no token vault to rotate');
        const { tokens: vault } = await piiKeysLoader(store.db, config.pii)();
        const result = await vault!.rotate((done) => process.stderr.write(`re-encrypted ${done} tokens\n`));
        const left = Object.entries(result.remaining);
        console.log(`re-encrypted ${result.reencrypted} token(s) under key "${config.pii.vault.activeKey}"`);
        if (left.length > 0) console.log(`still under keys no longer configured (restore them to rotate these): ${left.map(([key, n]) => `${key}: ${n}`).join(', ')}`);
      }),
    );

  program
    .command('erase')
    .description('forget a customer: their records are deleted at every destination (by a running ctbridge, at its next poll), and their snapshots, vault tokens and dead event payloads here at once')
    .requiredOption('--customer <id>', 'the commercetools customer id')
    .addOption(configOption())
    .action((options: { customer: string; config?: string }) =>
      withStore(options, async (store, config) => {
        const correlationId = randomUUID();
        const request = await requestErasure(store.db, options.customer, correlationId, 'cli', Date.now());
        await carryOutErasures(store.db, [request], await piiKeysLoader(store.db, config.pii)(), Date.now());
        if (!(await store.scrub())) console.log('the store\'s write-ahead log was busy and still holds older copies of the erased rows: run this command again to remove them');
        console.log(`erased customer ${options.customer} (correlation id ${correlationId}); \`ctbridge audit --record ${options.customer}\` shows what was done`);
      }),
    );
}
