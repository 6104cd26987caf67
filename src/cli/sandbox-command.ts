// `ctbridge sandbox` (what `npm start` runs): the option parsing and signal handling around src/sandbox/run.ts.
// Ctrl-C / SIGTERM ask the sandbox to stop cleanly; a second one gives up waiting and exits at once.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { EXIT_USAGE } from './common.ts';

const DEFAULT_PORT = 8080;

function integer(name: string, min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim()) || Number(value) < min || Number(value) > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    return Number(value);
  };
}

export function registerSandboxCommand(program: Command): void {
  program
    .command('sandbox')
    .description('run ctbridge with a seeded commercetools emulator, a local destination and a change generator (no set-up needed)')
    .addOption(new Option('--duration <seconds>', 'stop after this many seconds (default: until Ctrl-C)').argParser(integer('--duration', 1, 86_400)))
    .addOption(new Option('--seed <n>', 'seed for the shop data and the generator').argParser(integer('--seed', 0, 2 ** 31)).default(1))
    .addOption(new Option('--port <n>', `ctbridge's HTTP port; 0 picks a free one; a taken port falls back to a free one (default: $PORT, else ${DEFAULT_PORT})`).argParser(integer('--port', 0, 65_535)))
    .addOption(new Option('--dir <path>', 'where the sandbox keeps its store, log and generated config (default: $CTBRIDGE_SANDBOX_DIR, else .ctbridge)'))
    .option('--quiet', 'print only the summary')
    .action(async (options: { duration?: number; seed: number; port?: number; dir?: string; quiet?: boolean }) => {
      const fromEnv = process.env.PORT;
      if (options.port === undefined && fromEnv && !/^\d+$/.test(fromEnv.trim())) {
        process.stderr.write(`ctbridge: the PORT environment variable must be a port number, got ${JSON.stringify(fromEnv)}\n`);
        process.exitCode = EXIT_USAGE;
        return;
      }
      const port = options.port ?? (fromEnv ? Number(fromEnv) : DEFAULT_PORT);
      const controller = new AbortController();
      const onSignal = () => {
        if (controller.signal.aborted) {
          process.stderr.write('\nstopping without waiting for ctbridge to drain\n');
          process.exit(130);
        }
        controller.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        // Loaded on demand: the emulator and its web framework cost ~50 MB that `ctbridge start` must not carry.
        const { runSandbox } = await import('../sandbox/run.ts');
        await runSandbox({
          dir: options.dir ?? (process.env.CTBRIDGE_SANDBOX_DIR || '.ctbridge'),
          port,
          seed: options.seed,
          durationSeconds: options.duration,
          quiet: options.quiet ?? false,
          signal: controller.signal,
        });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
