// The ctbridge command line. This module only assembles the program: each group of commands lives in its own
// module exporting `registerXCommands(program)`, added to the list below, so commands can be written side by side.
import { Command } from 'commander';
import packageJson from '../../package.json' with { type: 'json' };
import { registerApiKeyCommands } from './api-key-commands.ts';
import { reportError } from './common.ts';
import { registerBackfillCommands } from './backfill-commands.ts';
import { registerConfigCommands } from './config-commands.ts';
import { registerDlqCommands } from './dlq-commands.ts';
import { registerMappingCommands } from './mapping-commands.ts';
import { registerPiiCommands } from './pii-commands.ts';
import { registerPayloadCommands } from './payload-commands.ts';
import { registerReconcileCommand } from './reconcile-command.ts';
import { registerRunCommands } from './run-commands.ts';
import { registerSandboxCommand } from './sandbox-command.ts';
import { registerSetupCommand } from './setup-command.ts';

const program = new Command('ctbridge')
  .description(packageJson.description)
  .version(packageJson.version, '-V, --version', 'print the ctbridge version')
  // Usage errors must end with status 2, not commander's 1, so commander throws and reportError decides.
  .exitOverride()
  .showHelpAfterError('(run "ctbridge --help" for usage)');

registerRunCommands(program);
registerConfigCommands(program);
registerDlqCommands(program);
registerMappingCommands(program);
registerPiiCommands(program);
registerSandboxCommand(program);
registerApiKeyCommands(program);
registerPayloadCommands(program);
registerBackfillCommands(program);
registerSetupCommand(program);
registerReconcileCommand(program);

// Commands built elsewhere and attached with addCommand() do not inherit the settings above; apply them to all.
applyToAll(program, (command) => command.exitOverride().showHelpAfterError('(run "ctbridge --help" for usage)'));

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = reportError(error);
}

function applyToAll(command: Command, apply: (command: Command) => void): void {
  for (const child of command.commands) {
    apply(child);
    applyToAll(child, apply);
  }
}
