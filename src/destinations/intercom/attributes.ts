// Start-up (the definition's prepare): the custom contact attributes the mappings write exist with the declared
// data types — created when missing, refused when Intercom has one with another type (a PermanentError that stops
// `ctbridge start` naming both). An unreachable Intercom only postpones it to the first record send.
import { PermanentError } from '../kit/index.ts';
import type { IntercomClient } from './client.ts';

export async function ensureAttributes(client: IntercomClient): Promise<void> {
  const wanted = Object.entries(client.settings.attributes);
  if (wanted.length === 0) return;
  const existing = await client.call('listing data attributes', (api) => api.dataAttributes.list({ model: 'contact' }));
  const byName = new Map((existing.data ?? []).map((attribute) => [attribute.name, attribute]));
  for (const [name, type] of wanted) {
    const found = byName.get(name);
    if (!found) {
      await client.call(`creating the data attribute ${name}`, (api) => api.dataAttributes.create({ name, model: 'contact', data_type: type } as never));
      continue;
    }
    if (found.data_type !== type) throw new PermanentError(`the Intercom attribute "${name}" exists as ${String(found.data_type)}, but attributes.${name} says ${type}: change one of them`);
  }
}
