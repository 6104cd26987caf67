// `ctbridge mapping preview`: what a commercetools resource becomes in a destination, without starting anything —
// the mapped payload, the fields a sync would send against a previous payload, and which fields carry personal
// data (of their own class, or found inside them by the PII policy) and in what form they leave. A customer
// mapping that reads `$orders` is given the orders of --orders.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { sortOldestFirst } from '../commercetools/orders.ts';
import { changedFields } from '../engine/delta.ts';
import { compileRoutes } from '../engine/routes.ts';
import { normalizeBody } from '../ingest/normalize.ts';
import type { PiiClass, PiiTreatment } from '../pii/classes.ts';
import { configOption, exitUsage, loadConfigOrExit } from './common.ts';

/** How a personal field leaves, from the transforms it goes through (the last protective one decides). */
function formOf(transforms: readonly string[]): string {
  const last = [...transforms].reverse().find((name) => name === 'hash' || name === 'mask' || name === 'tokenize');
  return last === 'hash' ? 'hashed' : last === 'mask' ? 'masked' : last === 'tokenize' ? 'tokenized' : 'as is';
}

const TREATMENT_FORMS: Record<PiiTreatment, string> = { pass: 'as is', mask: 'masked', hash: 'hashed', tokenize: 'tokenized', drop: 'dropped' };

// The preview does not open the store: a tokenized field shows where its vault token would be.
const PREVIEW_TOKENS = { tokenize: () => Promise.resolve('[vault token]') };

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    return exitUsage(`cannot read the ${what} ${file}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    return exitUsage(`the ${what} ${file} is not JSON: ${(error as Error).message}`);
  }
}

/**
 * The resource itself, the only one of a query result (`GET /orders?where=…` answers { results: [...] }), or the
 * one a Message carries (CustomerCreated.customer, OrderCreated.order).
 */
function resourceOf(input: unknown, file: string): unknown {
  if (input !== null && typeof input === 'object' && Array.isArray((input as { results?: unknown }).results)) {
    const { results } = input as { results: unknown[] };
    if (results.length !== 1) return exitUsage(`the input ${file} is a query result with ${results.length} results; give one resource (e.g. with limit=1)`);
    return resourceOf(results[0], file);
  }
  if (input === null || typeof input !== 'object' || !('notificationType' in input)) return input;
  const notification = normalizeBody(input, {}).find((item) => item.kind === 'notification');
  return notification?.kind === 'notification' ? (notification.notification.carriedResource ?? notification.notification.payload) : input;
}

/** The customer's orders for `$orders`: a list of orders, or a query result (`GET /orders?where=customerId="…"`). */
function ordersOf(input: unknown, file: string): Record<string, unknown>[] {
  const list = input !== null && typeof input === 'object' && Array.isArray((input as { results?: unknown }).results) ? (input as { results: unknown[] }).results : input;
  if (!Array.isArray(list) || !list.every((order) => order !== null && typeof order === 'object' && !Array.isArray(order))) {
    return exitUsage(`the orders ${file} are neither a list of orders nor a query result ({ "results": [...] })`);
  }
  return sortOldestFirst([...(list as Record<string, unknown>[])]);
}

export function registerMappingCommands(program: Command): void {
  const mapping = program.command('mapping').description('inspect the field mappings of the configuration');

  mapping
    .command('preview')
    .description('map a commercetools resource (or a Message carrying one) as a destination record would be, and show the delta and the personal data')
    .requiredOption('--destination <name>', 'destination name')
    .requiredOption('--record <type>', 'record mapping name under the destination\'s records')
    .requiredOption('--input <file>', 'the resource as JSON, e.g. an API response or an official example')
    .option('--previous <file>', 'the payload last sent, as JSON, to show what a sync would send now')
    .option('--store <key>', 'map as if the resource belonged to this store (for when: blocks by store)')
    .option('--orders <file>', 'the customer\'s orders, for a mapping that reads $orders: a list or a query result')
    .option('--json', 'print one JSON object instead of text')
    .addOption(configOption())
    .action(async (options: { destination: string; record: string; input: string; previous?: string; store?: string; orders?: string; json?: boolean; config?: string }) => {
      const config = loadConfigOrExit(options);
      const destination = config.destinations.find((d) => d.name === options.destination);
      if (!destination) {
        return exitUsage(`no destination "${options.destination}" (configured: ${config.destinations.map((d) => d.name).join(', ') || 'none'})`);
      }
      const route = compileRoutes(config).record(destination.name, options.record);
      if (!route) {
        return exitUsage(`destination "${destination.name}" has no record mapping "${options.record}" (it has: ${Object.keys(destination.records).join(', ') || 'none'})`);
      }
      const orders = options.orders === undefined ? undefined : ordersOf(readJson(options.orders, 'orders'), options.orders);
      if (orders && !route.mapping.readsOrders) return exitUsage(`${destination.name} / ${options.record} does not read $orders; leave --orders out`);
      // Personal data the policy found inside fields of no class of their own (`custom.fields`, `$string($)`).
      const inside = new Map<string, { field: string; class: PiiClass; form: string; inside: true }>();
      const onInnerPii = (field: string, piiClass: PiiClass, treatment: PiiTreatment) => {
        inside.set(`${field}\u0000${piiClass}`, { field, class: piiClass, form: TREATMENT_FORMS[treatment], inside: true });
      };
      const context = { ...(options.store !== undefined && { store: options.store }), onInnerPii };
      const mapped = await route.mapping.apply(resourceOf(readJson(options.input, 'input'), options.input), { context, tokens: PREVIEW_TOKENS, orders });
      if (mapped.skip) {
        process.stdout.write(`${destination.name} / ${options.record}: a when: block leaves this ${route.resourceType} out of the destination (skip: true); nothing would be sent\n`);
        return;
      }
      const { payload } = mapped;
      const previous = options.previous === undefined ? undefined : readJson(options.previous, 'previous payload');
      if (previous !== undefined && (previous === null || typeof previous !== 'object' || Array.isArray(previous))) {
        return exitUsage(`the previous payload ${options.previous} is not a JSON object`);
      }
      const changed = changedFields(previous as Record<string, unknown> | undefined, payload);
      // A field overridden by a when: block is described by its last definition.
      const definitions = new Map(route.mapping.fields.map((field) => [field.name, field]));
      const personal = [...definitions.values()]
        .filter((field) => field.personal && (Object.hasOwn(payload, field.name) || field.treatment === 'drop'))
        .map((field): { field: string; class?: PiiClass; form: string; inside?: true } => ({ field: field.name, ...(field.piiClass && { class: field.piiClass }), form: field.treatment === 'drop' ? 'dropped' : formOf(field.transforms) }))
        .concat([...inside.values()]);
      const { target } = mapped;

      if (options.json) {
        process.stdout.write(`${JSON.stringify({ destination: destination.name, record: options.record, source: route.resourceType, ...(target && { target }), payload, changed, personal }, null, 2)}\n`);
        return;
      }
      const lines = [
        `${destination.name} / ${options.record} (from a commercetools ${route.resourceType}), input ${options.input}`,
        ...(target ? [`routed by a when: block to ${JSON.stringify(target)}`] : []),
        '',
        'payload:',
        JSON.stringify(payload, null, 2),
        '',
        previous === undefined
          ? `delta: all ${changed.length} fields (no previous payload given; --previous FILE compares)`
          : changed.length === 0
            ? 'delta: nothing changed, nothing would be sent'
            : `delta: ${changed.join(', ')} (${changed.length} of ${Object.keys(payload).length} fields)`,
        personal.length === 0 ? 'personal data: none' : `personal data: ${personal.map((p) => `${p.field} (${p.class ? `${p.class}${p.inside ? ' inside' : ''}, ` : ''}${p.form})`).join(', ')}`,
        ...(route.mapping.readsOrders ? [orders ? `$orders: ${orders.length} orders from ${options.orders}` : '$orders: no orders given (--orders FILE gives the customer\'s orders); mapped as a customer without any'] : []),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
