// What a user configures for a novomind iAGENT destination (`type: novomind`): the REST destination's settings
// with novomind's defaults filled in — the v2 media type (`application/vnd.novomind.iagent-v2+json`, the only
// version from iAGENT 11.6 on), OAuth2 at `<host>/iMail/api/rest/token` with the password grant, bearer tokens,
// errors as JSON with a `message` — and the paths of customers and order status notes. novomind's endpoints
// belong to each installation (its API console lists them; no public copy exists: spec/novomind/README.md),
// so every default here is overridable: an `operations` entry replaces the default one of the same name, key by key.
import { z } from 'zod';
import { oauth2Auth, presetOperations, restSettingsShape, type RestSettings } from '../rest/settings.ts';

export const NOVOMIND_MEDIA_TYPE = 'application/vnd.novomind.iagent-v2+json';
export const NOVOMIND_TOKEN_PATH = '/iMail/api/rest/token';
const REST = '/iMail/api/rest';

/** The default operations: customers by their commercetools id, and status notes on orders by order number. */
export const NOVOMIND_OPERATIONS = {
  records: {
    customer: {
      find: { method: 'GET', path: `${REST}/customers?externalId={id}`, idPointer: '/0/id' },
      create: { method: 'POST', path: `${REST}/customers`, idPointer: '/id' },
      update: { method: 'PUT', path: `${REST}/customers/{destinationId}` },
      delete: { method: 'DELETE', path: `${REST}/customers/{destinationId}` },
    },
  },
  events: {
    order_status: { send: { method: 'POST', path: `${REST}/orders/{fields.orderNumber}/statusnotes` } },
  },
} as const;

// The OAuth2 settings with novomind's token endpoint and grant as defaults.
const novomindOAuth2 = z.preprocess(
  (value) => (value !== null && typeof value === 'object' && !Array.isArray(value) ? { tokenUrl: NOVOMIND_TOKEN_PATH, grant: 'password', ...value } : value),
  oauth2Auth,
);

export const novomindSettings = z.object({
  ...restSettingsShape,
  baseUrl: z.url().describe('the installation\'s address, e.g. https://service.example.com (the REST API is below /iMail/api/rest)'),
  auth: z
    .union([z.strictObject({ oauth2: novomindOAuth2 }), z.strictObject({ bearer: z.string().min(1) })])
    .describe('OAuth2 (password grant at /iMail/api/rest/token by default; client credentials where the installation allows it) or a bearer token: novomind takes bearer tokens only'),
  mediaType: z.string().min(1).default(NOVOMIND_MEDIA_TYPE),
  errorMessage: restSettingsShape.errorMessage.unwrap().default('/message'),
  statusNotes: z
    .strictObject({ everyMinutes: z.number().positive().max(24 * 60).optional().describe('batch status notes: sent together at the end of each window of this many minutes') })
    .default({})
    .describe('how status changes reach novomind: at once (default) or batched'),
  operations: presetOperations(NOVOMIND_OPERATIONS),
});

export type NovomindSettings = z.infer<typeof novomindSettings>;

/** The REST settings a novomind destination runs with. */
export function novomindToRest(settings: NovomindSettings): RestSettings {
  const everyMinutes = settings.statusNotes.everyMinutes;
  const events = Object.fromEntries(
    Object.entries(settings.operations.events).map(([name, operation]) => [name, name === 'order_status' && everyMinutes !== undefined && operation.schedule === undefined ? { ...operation, schedule: { everyMinutes } } : operation]),
  );
  return { ...settings, operations: { records: settings.operations.records, events } };
}
