// Events through the REST destination's configured operation: each event one call (`send`), at once — or, with a
// `schedule` (every N minutes), held in the connector's state (the store, shared by every process) and sent at the
// end of its window, in the order the events happened (window.ts). Templates read: id (the resource's id),
// resourceType, eventType, sourceType, fields (the mapped payload), occurredAt (ISO 8601), correlationId,
// idempotencyKey, person, personId, customerId (the commercetools customer the event is about; none for a guest).
import { PermanentError, type EventItem, type ItemOperation, type ItemOutcome } from '../kit/index.ts';
import type { RestClient } from './client.ts';
import type { TemplateContext } from './template.ts';
import type { EventWindow } from './window.ts';

export function eventContext(item: EventItem): TemplateContext {
  return {
    id: item.resource?.id,
    resourceType: item.resource?.typeId,
    eventType: item.eventType,
    sourceType: item.sourceType,
    fields: item.payload,
    occurredAt: item.occurredAt === undefined ? undefined : new Date(item.occurredAt).toISOString(),
    correlationId: item.correlationId,
    idempotencyKey: item.idempotencyKey,
    person: item.person?.key,
    personId: item.person?.destinationId,
    customerId: item.person?.key.startsWith('customer:') ? item.person.key.slice('customer:'.length) : undefined,
  };
}

export interface RestConnection {
  client: RestClient;
  window: EventWindow;
}

export const sendEvent: ItemOperation<RestConnection, EventItem> = {
  name: 'send event',
  async perform({ client, window }, item): Promise<ItemOutcome> {
    const operation = client.settings.operations.events[item.eventType];
    if (operation === undefined) throw new PermanentError(`no operation is configured for events of "${item.eventType}" (operations.events.${item.eventType})`);
    if (operation.schedule) {
      // Delivered for the engine once held in the store; the window sends it (window.ts).
      await window.hold(item, operation.schedule.everyMinutes * 60_000);
      return { ok: true };
    }
    await client.call(operation.send, eventContext(item), { idempotencyKey: item.idempotencyKey, correlationId: item.correlationId, defaultBody: item.payload });
    return { ok: true };
  },
};
