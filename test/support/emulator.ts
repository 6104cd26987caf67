// The commercetools emulator of a test file or describe, and a client to it: started before its tests (with the
// custom Types its write-backs need, made as `ctbridge setup` makes them, and whatever the test prepares through
// the client: stores, a seeded shop), the client closed and the emulator stopped after them.
import type { ByProjectKeyRequestBuilder } from '@commercetools/platform-sdk';
import { afterAll, beforeAll } from 'vitest';
import { createCommercetoolsClient, type CommercetoolsClient } from '../../src/commercetools/client.ts';
import { setupTypes, type TypeFieldWanted } from '../../src/commercetools/writeback.ts';
import { emulatorCredentials, startEmulator, type Emulator } from '../../src/sandbox/emulator.ts';

export interface EmulatorOptions {
  /** The project's key (the emulator's default when not given). */
  projectKey?: string;
  /** Custom Types to make before the tests. */
  types?: readonly TypeFieldWanted[];
  /** Runs once the emulator is up and the Types are made, before the tests (e.g. creates stores, seeds a shop). */
  prepare?: (ct: CommercetoolsClient) => Promise<void>;
}

/** Read these inside the tests (they are set in beforeAll). */
export interface EmulatorUse {
  readonly emulator: Emulator;
  /** A client to the emulator with full rights. */
  readonly ct: CommercetoolsClient;
  /** The client's request builder (`ct.api`). */
  readonly api: ByProjectKeyRequestBuilder;
}

export function useEmulator(options: EmulatorOptions = {}): EmulatorUse {
  let started: { emulator: Emulator; ct: CommercetoolsClient } | undefined;
  beforeAll(async () => {
    const emulator = await startEmulator({ ...(options.projectKey && { projectKey: options.projectKey }) });
    started = { emulator, ct: createCommercetoolsClient(emulatorCredentials(emulator)) };
    if (options.types?.length) await setupTypes(started.ct, options.types, false);
    await options.prepare?.(started.ct);
  });
  afterAll(async () => {
    await started?.ct.close();
    await started?.emulator.close();
  });
  const get = () => {
    if (!started) throw new Error('the emulator is started in beforeAll: read it inside a test');
    return started;
  };
  return {
    get emulator() {
      return get().emulator;
    },
    get ct() {
      return get().ct;
    },
    get api() {
      return get().ct.api;
    },
  };
}
