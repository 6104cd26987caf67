// What every ctbridge command shares: the --config option, loading the configuration, and turning start-up
// failures into a one-line message and the documented exit status (2: configuration or usage, 1: anything else)
// rather than a stack trace.
import { CommanderError, Option } from 'commander';
import { ConfigError, loadConfig, resolveConfigPath } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { openStore, type Store } from '../store/store.ts';

export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 1;

/** `-c, --config FILE`, for any command that reads the configuration. */
export function configOption(): Option {
  return new Option('-c, --config <file>', 'configuration file (default: $CTBRIDGE_CONFIG, else ./ctbridge.yaml)');
}

/** Loads and validates the configuration, or prints why not and exits (2 for an invalid file, 1 otherwise). */
export function loadConfigOrExit(options: { config?: string }): Config {
  try {
    return loadConfig(resolveConfigPath(options.config));
  } catch (error) {
    return exitWithError(error);
  }
}

/** Prints what went wrong, without a stack, and returns the exit status it deserves. */
export function reportError(error: unknown): number {
  if (error instanceof CommanderError) {
    // commander has already printed its own message (or the help / version that was asked for).
    return error.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    return EXIT_USAGE;
  }
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`ctbridge: ${message}\n`);
  return EXIT_FAILURE;
}

/** A command used the wrong way (an unknown name, an unreadable input): say so and exit 2. */
export function exitUsage(message: string): never {
  process.stderr.write(`ctbridge: ${message}\n`);
  process.exit(EXIT_USAGE);
}

export function exitWithError(error: unknown): never {
  process.exit(reportError(error));
}

/** Runs `fn` against the configured store (migrated), closing it afterwards. */
export async function withStore<T>(options: { config?: string }, fn: (store: Store, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfigOrExit(options);
  const store = openStore(config.store);
  try {
    await store.migrate();
    return await fn(store, config);
  } finally {
    await store.close();
  }
}
