// Writes to commercetools for two-way sync, through the official SDK on the engine's authenticated client: read a
// customer or order, and apply update actions at the version read (optimistic concurrency). A 409
// ConcurrentModification comes out as ConcurrentModificationError, for the caller to read again and decide again;
// every other failure as one of the kit's error classes. Custom objects are written whole (create or replace by
// container and key, at the version read). Momentis' reward codes go through here too. Also the custom Types
// `ctbridge setup` checks and creates.
import type { FieldDefinition, TypeDraft, TypeUpdateAction } from '@commercetools/platform-sdk';
import { RetryableError } from '../destinations/kit/errors.ts';
import { toDeliveryErrorFromCommercetools, type CommercetoolsClient } from './client.ts';
import { syncRewardCodes, type RewardCodeSyncReport, type SyncRewardCodesOptions } from './reward-codes.ts';

export type WritableType = 'customer' | 'order';

export class ConcurrentModificationError extends RetryableError {
  override readonly name = 'ConcurrentModificationError';
  constructor(message: string) {
    super(message, { status: 409 });
  }
}

export interface CommercetoolsWriter {
  /** The resource as it is now; undefined when it does not exist. */
  read(typeId: WritableType, id: string): Promise<Record<string, unknown> | undefined>;
  /** Applies the actions at `version`; the updated resource. */
  update(typeId: WritableType, id: string, version: number, actions: ReadonlyArray<Record<string, unknown>>): Promise<Record<string, unknown>>;
  /** The custom object at container and key as it is now; undefined when there is none. */
  readCustomObject(address: CustomObjectAddress): Promise<Record<string, unknown> | undefined>;
  /**
   * Creates the custom object (`version` undefined) or replaces its value at `version`; the object written. A
   * version that is no longer current is a ConcurrentModificationError, as for update.
   */
  writeCustomObject(address: CustomObjectAddress, value: unknown, version: number | undefined): Promise<Record<string, unknown>>;
  /** Makes a customer's reward discount codes what its rewards say (reward-codes.ts). */
  syncRewardCodes(options: SyncRewardCodesOptions): Promise<RewardCodeSyncReport>;
}

export interface CustomObjectAddress {
  container: string;
  key: string;
}

const statusOf = (error: unknown): number | undefined => {
  const outer = error as { statusCode?: unknown; body?: { statusCode?: unknown } } | null;
  const status = outer?.statusCode ?? outer?.body?.statusCode;
  return typeof status === 'number' ? status : undefined;
};

export function commercetoolsWriter(client: CommercetoolsClient): CommercetoolsWriter {
  const endpoint = (typeId: WritableType, id: string) => (typeId === 'customer' ? client.api.customers().withId({ ID: id }) : client.api.orders().withId({ ID: id }));
  return {
    syncRewardCodes: (options) => syncRewardCodes(client, options),
    async read(typeId, id) {
      try {
        const response = await endpoint(typeId, id).get().execute();
        return response.body as unknown as Record<string, unknown>;
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw toDeliveryErrorFromCommercetools(error, `reading ${typeId} ${id} to write it back`);
      }
    },
    async update(typeId, id, version, actions) {
      try {
        const response = await endpoint(typeId, id)
          .post({ body: { version, actions: actions as never } })
          .execute();
        return response.body as unknown as Record<string, unknown>;
      } catch (error) {
        if (statusOf(error) === 409) throw new ConcurrentModificationError(`commercetools: ${typeId} ${id} changed since version ${version} (409 ConcurrentModification)`);
        throw toDeliveryErrorFromCommercetools(error, `updating ${typeId} ${id}`);
      }
    },
    async readCustomObject({ container, key }) {
      try {
        return (await client.api.customObjects().withContainerAndKey({ container, key }).get().execute()).body as unknown as Record<string, unknown>;
      } catch (error) {
        if (statusOf(error) === 404) return undefined;
        throw toDeliveryErrorFromCommercetools(error, `reading the custom object ${container}/${key} to write it back`);
      }
    },
    async writeCustomObject({ container, key }, value, version) {
      // POST /custom-objects creates or replaces by container and key; with a version, only that version is
      // replaced (409 ConcurrentModification otherwise), and concurrent writes may be refused with 409 even without.
      try {
        return (await client.api.customObjects().post({ body: { container, key, value, ...(version !== undefined && { version }) } }).execute()).body as unknown as Record<string, unknown>;
      } catch (error) {
        if (statusOf(error) === 409) throw new ConcurrentModificationError(`commercetools: the custom object ${container}/${key} changed${version === undefined ? ' while it was created' : ` since version ${version}`} (409 ConcurrentModification)`);
        throw toDeliveryErrorFromCommercetools(error, `writing the custom object ${container}/${key}`);
      }
    },
  };
}

export interface TypeFieldWanted {
  type: string;
  resourceTypeId: WritableType;
  field: string;
  fieldType: 'String' | 'Number' | 'Boolean';
}

export type SetupChange = { kind: 'create-type'; type: string; resourceTypeId: WritableType; fields: string[] } | { kind: 'add-field'; type: string; field: string } | { kind: 'conflict'; type: string; message: string };

/**
 * What the custom Types must gain for the fields written back (`ctbridge setup`): Types to create, fields to add,
 * and conflicts it cannot fix (a Type for another resource, a field of another type). Applied unless `dryRun`.
 */
export async function setupTypes(client: CommercetoolsClient, wanted: readonly TypeFieldWanted[], dryRun: boolean): Promise<SetupChange[]> {
  const changes: SetupChange[] = [];
  const byType = new Map<string, TypeFieldWanted[]>();
  for (const field of wanted) byType.set(field.type, [...(byType.get(field.type) ?? []), field]);
  for (const [key, fields] of byType) {
    const resourceTypeId = fields[0]!.resourceTypeId;
    const definition = (f: TypeFieldWanted): FieldDefinition => ({ name: f.field, label: { en: f.field }, required: false, type: { name: f.fieldType }, inputHint: 'SingleLine' });
    let existing: { version: number; resourceTypeIds: string[]; fieldDefinitions: FieldDefinition[] } | undefined;
    try {
      existing = (await client.api.types().withKey({ key }).get().execute()).body;
    } catch (error) {
      if (statusOf(error) !== 404) throw toDeliveryErrorFromCommercetools(error, `reading the Type ${key}`);
    }
    if (!existing) {
      changes.push({ kind: 'create-type', type: key, resourceTypeId, fields: fields.map((f) => f.field) });
      const draft: TypeDraft = { key, name: { en: key }, resourceTypeIds: [resourceTypeId], fieldDefinitions: fields.map(definition) };
      if (!dryRun) await client.api.types().post({ body: draft }).execute().catch((error: unknown) => Promise.reject(toDeliveryErrorFromCommercetools(error, `creating the Type ${key}`)));
      continue;
    }
    if (!existing.resourceTypeIds.includes(resourceTypeId)) {
      changes.push({ kind: 'conflict', type: key, message: `the Type ${key} is for ${existing.resourceTypeIds.join(', ')}, not ${resourceTypeId}: use another key` });
      continue;
    }
    const actions: TypeUpdateAction[] = [];
    for (const field of fields) {
      const has = existing.fieldDefinitions.find((d) => d.name === field.field);
      if (!has) {
        changes.push({ kind: 'add-field', type: key, field: field.field });
        actions.push({ action: 'addFieldDefinition', fieldDefinition: definition(field) });
      } else if (has.type.name !== field.fieldType) {
        changes.push({ kind: 'conflict', type: key, message: `the field ${field.field} of Type ${key} is ${has.type.name}, not ${field.fieldType}` });
      }
    }
    if (actions.length > 0 && !dryRun) {
      await client.api
        .types()
        .withKey({ key })
        .post({ body: { version: existing.version, actions } })
        .execute()
        .catch((error: unknown) => Promise.reject(toDeliveryErrorFromCommercetools(error, `adding fields to the Type ${key}`)));
    }
  }
  return changes;
}
