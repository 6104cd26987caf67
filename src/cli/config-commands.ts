// `ctbridge config check` and `ctbridge config schema`: validate a configuration without starting anything, and
// print the JSON Schema of the file for editor completion. The check also warns about what is valid but likely not
// meant: scopes broader or narrower than the configuration needs, a reference read through `.obj` that is not expanded.
import type { Command } from 'commander';
import { configJsonSchema, resolveConfigPath } from '../config/load.ts';
import { scopeWarnings } from '../config/ownership.ts';
import { syncScopeWarnings } from '../config/sync.ts';
import { unexpandedReferenceWarnings } from '../engine/routes.ts';
import { configOption, loadConfigOrExit } from './common.ts';

export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('check the configuration file or print its JSON Schema');

  config
    .command('check')
    .description('validate the configuration file (exit status 2 when it is invalid)')
    .addOption(configOption())
    .action((options: { config?: string }) => {
      const file = resolveConfigPath(options.config);
      const loaded = loadConfigOrExit({ config: file });
      const names = loaded.destinations.map((destination) => destination.name);
      const count = `${names.length} destination${names.length === 1 ? '' : 's'}`;
      process.stdout.write(`${file}: ok (${names.length > 0 ? `${count}: ${names.join(', ')}` : count})\n`);
      // Least privilege: scopes the configuration does not use (or lacks) are warned about, not refused.
      // A mapping reading a reference's obj that is not expanded maps as if it had none.
      const warnings = [...scopeWarnings(loaded.commercetools.scopes, loaded.destinations), ...syncScopeWarnings(loaded.commercetools.scopes, loaded.destinations), ...unexpandedReferenceWarnings(loaded)];
      for (const warning of warnings) process.stderr.write(`${file}: warning: ${warning}\n`);
    });

  config
    .command('schema')
    .description('print the JSON Schema (draft 2020-12) of the configuration file')
    .action(() => {
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    });
}
