// What the engine needs to keep personal data out of its own rows, loaded once per process: the snapshot
// digester, (with pii.vault configured) the token vault, the person resolver whose email digests identify
// guests, and the digester of two-way sync's field states. All are keyed from the root key (secrets.ts).
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import { deriveKey, loadRootKey, sealKeyOf } from './secrets.ts';
import { createSnapshotter, type Snapshotter } from './snapshot.ts';
import { createSealer, type Sealer } from './sealed.ts';
import { createVault, type Vault, type VaultConfig } from './vault.ts';
import { createPersonResolver, type EmailRules, type PersonResolver } from '../identity/person.ts';
import { keyedDigester, type Digester } from '../engine/field-state.ts';

export interface PiiKeys {
  snapshot: Snapshotter;
  tokens: Vault | undefined;
  /** Who a resource is about (identity/person.ts), with keyed email digests. */
  persons: PersonResolver;
  /** Encrypts what is kept only to be used again (a dead event's message). */
  sealer: Sealer;
  /** Digests of the values of fields both sides write (engine/field-state.ts), keyed. */
  fieldDigest: Digester;
}

export interface PiiSettings {
  hashKey?: string | undefined;
  vault?: VaultConfig | undefined;
  /** How emails are normalised before guests are matched to customers. */
  emailRules?: EmailRules | undefined;
}

/** Loads the keys on first call; later calls share the result (a failed load is tried again). */
export function piiKeysLoader(db: Kysely<Database>, settings: PiiSettings): () => Promise<PiiKeys> {
  let loading: Promise<PiiKeys> | undefined;
  return () => {
    loading ??= (async () => {
      const root = await loadRootKey(db, settings.hashKey);
      return {
        snapshot: createSnapshotter(deriveKey(root, 'snapshot')),
        tokens: settings.vault ? createVault(db, settings.vault, deriveKey(root, 'blind-index')) : undefined,
        // What was sealed under the store's own key before pii.hashKey was configured still opens.
        sealer: createSealer(sealKeyOf(root), settings.hashKey === undefined ? [] : [sealKeyOf(await loadRootKey(db, undefined))]),
        fieldDigest: keyedDigester(deriveKey(root, 'field-state')),
        persons: createPersonResolver(settings.emailRules ?? { foldDots: [], foldPlus: [] }, deriveKey(root, 'identity')),
      };
    })().catch((error: unknown) => {
      loading = undefined;
      throw error;
    });
    return loading;
  };
}
