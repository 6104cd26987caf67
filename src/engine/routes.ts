// Which work a notification creates, compiled once from the configuration: the record keys it dirties
// (per destination and record mapping whose source is the notification's resource type) and the event
// deliveries it starts (per destination and event mapping listening to its message type). A destination whose
// customer mappings read `$orders` also gets a record route of its own for orders (ORDERS_OF_CUSTOMERS): most
// order messages do not say whose order it is, so that route reads the order and marks its customer dirty. Likewise
// a destination whose mappings read custom objects by where they are (`customObjects.<container>.<field>.obj`)
// gets a route for custom objects (CUSTOM_OBJECT_OWNERS): a custom object changed on its own (a consent object)
// marks the records that read it dirty, so the change reaches the destination without the owner changing.
import type { Config, DestinationConfig } from '../config/schema.ts';
import { compileMapping, type CompiledMapping } from '../mapping/record-mapping.ts';
import { CUSTOM_OBJECTS_STEP } from '../mapping/references.ts';

export interface RecordRoute {
  destination: string;
  recordType: string;
  resourceType: string;
  onDelete: 'delete' | 'ignore';
  mapping: CompiledMapping;
  /**
   * Set on the ORDERS_OF_CUSTOMERS route: the customer record types of the destination whose mappings read
   * `$orders`. Its orders are never sent; syncing one marks these records of its customer (and of the customer
   * it had before) dirty, so they read the orders again.
   */
  dirtiesCustomers?: readonly string[];
  /**
   * Set on the CUSTOM_OBJECT_OWNERS route: the records that read custom objects of a container, keyed by a field of
   * their resource. Its custom objects are never sent; syncing one marks the record whose field equals the
   * object's key dirty.
   */
  dirtiesOwners?: readonly CustomObjectOwner[];
}

export interface CustomObjectOwner {
  recordType: string;
  resourceType: string;
  container: string;
  /** The owner resource's field the object's key is (`id`, `key`, `customerNumber`…). */
  keyField: string;
}

/** The record type of the route that turns custom object changes into syncs of the records that read them. */
export const CUSTOM_OBJECT_OWNERS = '$customObjects';

/** The record type of the route that turns order changes into syncs of their customers (`$` names are ctbridge's). */
export const ORDERS_OF_CUSTOMERS = '$orders';

export interface EventRoute {
  destination: string;
  eventType: string;
  mapping: CompiledMapping;
}

export interface Routes {
  recordsFor(resourceType: string): readonly RecordRoute[];
  eventsFor(messageType: string): readonly EventRoute[];
  record(destination: string, recordType: string): RecordRoute | undefined;
  event(destination: string, eventType: string): EventRoute | undefined;
  destinations: readonly DestinationConfig[];
}

export function compileRoutes(config: Pick<Config, 'destinations'> & Partial<Pick<Config, 'pii' | 'commercetools'>>): Routes {
  const common = { secrets: { hashKey: config.pii?.hashKey }, projectKey: config.commercetools?.projectKey };
  const byResource = new Map<string, RecordRoute[]>();
  const byMessage = new Map<string, EventRoute[]>();
  const records = new Map<string, RecordRoute>();
  const events = new Map<string, EventRoute>();
  for (const destination of config.destinations) {
    const options = { ...common, policy: destination.pii };
    for (const [recordType, mapping] of Object.entries(destination.records)) {
      const route: RecordRoute = {
        destination: destination.name,
        recordType,
        resourceType: mapping.source ?? recordType,
        onDelete: mapping.onDelete,
        mapping: compileMapping(mapping, options),
      };
      push(byResource, route.resourceType, route);
      records.set(`${destination.name}\u0000${recordType}`, route);
    }
    // Routes of ctbridge's own that send nothing and mark the records that read what they carry dirty.
    const derived = (recordType: string, resourceType: string, marks: Pick<RecordRoute, 'dirtiesCustomers' | 'dirtiesOwners'>) => {
      const route: RecordRoute = { destination: destination.name, recordType, resourceType, onDelete: 'delete', mapping: compileMapping({ fields: {} }), ...marks };
      push(byResource, resourceType, route);
      records.set(`${destination.name}\u0000${recordType}`, route);
    };
    const readingOrders = [...records.values()].filter((route) => route.destination === destination.name && route.resourceType === 'customer' && route.mapping.readsOrders);
    if (readingOrders.length > 0) derived(ORDERS_OF_CUSTOMERS, 'order', { dirtiesCustomers: readingOrders.map((r) => r.recordType) });
    const owners = [...records.values()].filter((route) => route.destination === destination.name).flatMap((route) => customObjectsRead(route));
    if (owners.length > 0) derived(CUSTOM_OBJECT_OWNERS, 'key-value-document', { dirtiesOwners: owners });
    for (const [eventType, mapping] of Object.entries(destination.events)) {
      const route: EventRoute = { destination: destination.name, eventType, mapping: compileMapping(mapping, options) };
      for (const messageType of mapping.on) push(byMessage, messageType, route);
      events.set(`${destination.name}\u0000${eventType}`, route);
    }
  }
  return {
    recordsFor: (resourceType) => byResource.get(resourceType) ?? [],
    eventsFor: (messageType) => byMessage.get(messageType) ?? [],
    record: (destination, recordType) => records.get(`${destination}\u0000${recordType}`),
    event: (destination, eventType) => events.get(`${destination}\u0000${eventType}`),
    destinations: config.destinations,
  };
}

/**
 * The `.obj` reads of the configured mappings that no expansion serves (a JSONata variable's, `$orders`'): they map
 * as if the reference had no object, which `config check` warns about.
 */
export function unexpandedReferenceWarnings(config: Pick<Config, 'destinations'> & Partial<Pick<Config, 'pii' | 'commercetools'>>): string[] {
  const routes = compileRoutes(config);
  return config.destinations.flatMap((destination, index) => {
    const mappings = [
      ...Object.keys(destination.records).map((name) => ({ at: `records.${name}`, route: routes.record(destination.name, name) })),
      ...Object.keys(destination.events).map((name) => ({ at: `events.${name}`, route: routes.event(destination.name, name) })),
    ];
    return mappings.flatMap(({ at, route }) =>
      (route?.mapping.unexpandedReferences ?? []).map(
        ({ field, reads }) => `destinations[${index}].${at}.${field}: ${reads} is not expanded (only a reference reached by a path from the resource or $subject is), so it has no obj`,
      ),
    );
  });
}

/** The custom objects a record route's mapping reads by where they are (`customObjects.<container>.<field>`). */
function customObjectsRead(route: RecordRoute): CustomObjectOwner[] {
  return route.mapping.references.flatMap((path) =>
    path[0] === CUSTOM_OBJECTS_STEP && path.length === 3 && typeof path[1] === 'string' && typeof path[2] === 'string'
      ? [{ recordType: route.recordType, resourceType: route.resourceType, container: path[1], keyField: path[2] }]
      : [],
  );
}

function push<T>(map: Map<string, T[]>, key: string, value: T): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
