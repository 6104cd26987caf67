// A contact's tags: a mapped `tags` field (a name or a list, e.g. the customer group's name) kept as Intercom
// tags — the ones the record has now attached, the ones it had when last sent (item.previous) detached. Tag ids
// are looked up by name once per destination: POST /tags creates a tag or answers the existing one.
import { PermanentError, type RecordItem } from '../kit/index.ts';
import type { IntercomClient } from './client.ts';
import { TAGS_FIELD, names } from './fields.ts';

const tagIdsOf = new WeakMap<IntercomClient, Map<string, Promise<string>>>();

function tagId(client: IntercomClient, name: string): Promise<string> {
  let ids = tagIdsOf.get(client);
  if (!ids) {
    ids = new Map<string, Promise<string>>();
    tagIdsOf.set(client, ids);
  }
  let id = ids.get(name);
  if (!id) {
    id = client.call(`creating the tag ${name}`, (api) => api.tags.create({ name })).then((tag) => tag.id);
    // A failed lookup is not remembered: the next record tries again.
    id.catch(() => ids.delete(name));
    ids.set(name, id);
  }
  return id;
}

/** Attaches the tags the record has now and detaches the ones it had when last sent; nothing when tags did not change. */
export async function syncTags(client: IntercomClient, contactId: string, item: Pick<RecordItem, 'fields' | 'previous'>): Promise<void> {
  if (!Object.hasOwn(item.fields, TAGS_FIELD)) return;
  const now = names(item.fields[TAGS_FIELD]);
  const before = names(item.previous?.[TAGS_FIELD]);
  for (const name of now.filter((n) => !before.includes(n))) {
    const id = await tagId(client, name);
    await client.call(`tagging contact ${contactId} with ${name}`, (api) => api.tags.tagContact({ contact_id: contactId, id }));
  }
  for (const name of before.filter((n) => !now.includes(n))) {
    const id = await tagId(client, name);
    try {
      await client.call(`untagging contact ${contactId} from ${name}`, (api) => api.tags.untagContact({ contact_id: contactId, tag_id: id }));
    } catch (error) {
      // Not tagged any more (removed by hand in Intercom): what we wanted.
      if (!(error instanceof PermanentError && error.status === 404)) throw error;
    }
  }
}
