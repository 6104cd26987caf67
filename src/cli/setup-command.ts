// `ctbridge setup [--dry-run]`: what commercetools must have before two-way sync writes back — the custom Types and
// fields that written-back fields land in (ownership.<field>.writeBack.customField), and those a destination's
// webhooks write whole (Momentis: the Type ctbridge-loyalty). Creates a missing Type, adds
// missing fields to an existing one, and changes nothing that is already right, so it can run at every deploy;
// `--dry-run` reports what it would change and changes nothing. A Type for another resource, or a field of another
// type, cannot be fixed without losing data: it is reported and the command exits 1.
import type { Command } from 'commander';
import { createCommercetoolsClient } from '../commercetools/client.ts';
import { setupTypes, type TypeFieldWanted, type WritableType } from '../commercetools/writeback.ts';
import type { Config } from '../config/schema.ts';
import { configOption, exitWithError, loadConfigOrExit } from './common.ts';
import { findDestinationDefinition } from '../destinations/registry.ts';

/** The custom fields the configuration writes back, with their Type and resource type. */
export function wantedTypeFields(config: Pick<Config, 'destinations'>): TypeFieldWanted[] {
  const wanted = new Map<string, TypeFieldWanted>();
  for (const destination of config.destinations) {
    for (const [name, mapping] of Object.entries(destination.records)) {
      for (const ownership of Object.values(mapping.ownership ?? {})) {
        const writeBack = ownership.writeBack;
        if (!writeBack || !('customField' in writeBack)) continue;
        const field: TypeFieldWanted = { type: writeBack.type, resourceTypeId: (mapping.source ?? name) as WritableType, field: writeBack.customField, fieldType: writeBack.fieldType };
        wanted.set(`${field.type}/${field.field}`, field);
      }
    }
    // Fields a destination's webhooks write whole (Momentis' loyalty state).
    const inbound = destination.inbound ? findDestinationDefinition(destination.type)?.inbound : undefined;
    if (inbound?.snapshotFields) {
      const settings = findDestinationDefinition(destination.type)!.settings.parse(destination);
      for (const field of inbound.snapshotFields(settings)) wanted.set(`${field.type}/${field.field}`, field);
    }
  }
  return [...wanted.values()];
}

export function registerSetupCommand(program: Command): void {
  program
    .command('setup')
    .description('create or check the commercetools custom Types and fields two-way sync writes back to (idempotent)')
    .addOption(configOption())
    .option('--dry-run', 'report what would change, change nothing')
    .action(async (options: { config?: string; dryRun?: boolean }) => {
      const config = loadConfigOrExit(options);
      const wanted = wantedTypeFields(config);
      if (wanted.length === 0) {
        process.stdout.write('nothing to set up: no field is written back to a custom field\n');
        return;
      }
      const client = createCommercetoolsClient(config.commercetools);
      try {
        const changes = await setupTypes(client, wanted, options.dryRun === true);
        const verb = options.dryRun ? 'would ' : '';
        for (const change of changes) {
          if (change.kind === 'create-type') process.stdout.write(`${verb}create Type ${change.type} for ${change.resourceTypeId} with ${change.fields.join(', ')}\n`);
          else if (change.kind === 'add-field') process.stdout.write(`${verb}add field ${change.field} to Type ${change.type}\n`);
          else process.stderr.write(`cannot set up: ${change.message}\n`);
        }
        if (changes.length === 0) process.stdout.write(`up to date: ${wanted.map((w) => `${w.type}.${w.field}`).join(', ')}\n`);
        if (changes.some((change) => change.kind === 'conflict')) process.exitCode = 1;
      } catch (error) {
        exitWithError(error);
      } finally {
        await client.close();
      }
    });
}
