// `ctbridge api-key generate`: makes a key for an API client of the support view or agent actions. The key is
// printed once for the client; the configuration gets only its digest (api.clients[].keyHash).
import type { Command } from 'commander';
import { generateApiKey } from '../server/api-clients.ts';

export function registerApiKeyCommands(program: Command): void {
  const apiKey = program.command('api-key').description('API keys of the support view and agent actions clients');
  apiKey
    .command('generate')
    .description('print a new random API key and the keyHash to put in api.clients')
    .option('--json', 'print { key, keyHash } as JSON')
    .action((options: { json?: boolean }) => {
      const { key, keyHash } = generateApiKey();
      if (options.json) process.stdout.write(`${JSON.stringify({ key, keyHash })}\n`);
      else process.stdout.write(`key:     ${key}\n  (give it to the client; it is not stored anywhere)\nkeyHash: ${keyHash}\n  (put it in api.clients[].keyHash)\n`);
    });
}
