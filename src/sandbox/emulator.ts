// Runs the commercetools emulator (@labdigital/commercetools-mock) as a real HTTP server on 127.0.0.1, so the sandbox
// and the tests talk to it exactly as ctbridge talks to commercetools: OAuth client credentials first, then the HTTP
// API, through the official SDK. Where the emulator differs from commercetools in a way the sandbox or the tests
// would otherwise depend on, it is corrected here (keepCustomerDraft, keepCartFractionDigits), and order actions it
// lacks are added (emulator-orders.ts), discount codes are applied as commercetools applies them
// (emulator-discounts.ts), and the Messages API is added (emulator-messages.ts).
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Cart, CustomerDraft, CustomerGroupResourceIdentifier } from '@commercetools/platform-sdk';
import { CommercetoolsMock } from '@labdigital/commercetools-mock';
import { addDiscountRules } from './emulator-discounts.ts';
import { addOrderActions } from './emulator-orders.ts';
import { honourSortAndTotal } from './emulator-queries.ts';
import { addMessagesApi } from './emulator-messages.ts';

export interface EmulatorOptions {
  /** 0 (the default) picks a free port. */
  port?: number;
  projectKey?: string;
  clientId?: string;
  clientSecret?: string;
}

export interface Emulator {
  projectKey: string;
  authUrl: string;
  apiUrl: string;
  clientId: string;
  clientSecret: string;
  /** Access tokens handed out so far; lets tests and the sandbox see that tokens are reused. */
  readonly tokenRequests: number;
  /** API requests (everything but OAuth) received so far; lets tests see how many calls a fetch took. */
  readonly apiRequests: number;
  /** The emulator itself, for direct (non-HTTP) inspection in tests. */
  readonly mock: CommercetoolsMock;
  close(): Promise<void>;
}

/** The `commercetools` settings (and client config) that reach this emulator with full rights. */
export function emulatorCredentials(emulator: Emulator): { projectKey: string; authUrl: string; apiUrl: string; clientId: string; clientSecret: string; scopes: string[] } {
  return {
    projectKey: emulator.projectKey,
    authUrl: emulator.authUrl,
    apiUrl: emulator.apiUrl,
    clientId: emulator.clientId,
    clientSecret: emulator.clientSecret,
    scopes: [`manage_project:${emulator.projectKey}`],
  };
}

interface BasicCredentials {
  clientId: string;
  clientSecret: string;
}

function parseBasicAuth(header: string | undefined): BasicCredentials | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { clientId: decoded.slice(0, colon), clientSecret: decoded.slice(colon + 1) };
}

// The body commercetools' auth server answers with for unknown or wrong client credentials.
function invalidClientBody(): Record<string, unknown> {
  const message = 'Please provide valid client credentials using HTTP Basic Authentication.';
  return {
    statusCode: 401,
    message,
    errors: [{ code: 'invalid_client', message }],
    error: 'invalid_client',
    error_description: message,
  };
}

/**
 * The emulator creates a customer without the `customerGroup` and `customerGroupAssignments` of its CustomerDraft
 * (and without its `locale`, `salutation` and `vatId`, kept below as given)
 * (its CustomerRepository.create sets `customerGroupAssignments: []` and never reads `customerGroup`, as of
 * @labdigital/commercetools-mock 4.4.0; only the setCustomerGroup update action sets a group). commercetools keeps
 * both, the group given by id or by key as a ResourceIdentifier and answered as a Reference by id, and refuses a
 * group that does not exist with 400 ReferencedResourceNotFound
 * (https://docs.commercetools.com/api/projects/customers#customerdraft). The customer repository's create is
 * wrapped to do the same: the groups are looked up first (an unknown one fails the create, nothing stored), then
 * written into the created customer in place, at its version 1, as commercetools answers it. No upstream issue
 * reports this for customers (labd/commercetools-node-mock's issues searched); the same gap on prices, a price's
 * customerGroup dropped, was https://github.com/labd/commercetools-node-mock/issues/283 (fixed by pull request 424).
 */
function keepCustomerDraft(mock: CommercetoolsMock, projectKey: string): void {
  const project = mock.project(projectKey);
  const storage = project.config.storage;
  const customers = project.getRepository('customer');
  const create = customers.create.bind(customers);
  const reference = async (context: { projectKey: string }, identifier: CustomerGroupResourceIdentifier) => {
    const group = await storage.getByResourceIdentifier<'customer-group'>(context.projectKey, { ...identifier, typeId: 'customer-group' });
    return { typeId: 'customer-group' as const, id: group.id };
  };
  customers.create = async (context, draft: CustomerDraft) => {
    const group = draft.customerGroup ? await reference(context, draft.customerGroup) : undefined;
    const assignments = [];
    for (const assignment of draft.customerGroupAssignments ?? []) assignments.push({ customerGroup: await reference(context, assignment.customerGroup) });
    const created = await create(context, draft);
    // The same create drops `locale`, `salutation` and `vatId`, which commercetools keeps as given.
    const dropped = { ...(draft.locale !== undefined && { locale: draft.locale }), ...(draft.salutation !== undefined && { salutation: draft.salutation }), ...(draft.vatId !== undefined && { vatId: draft.vatId }) };
    if (!group && assignments.length === 0 && Object.keys(dropped).length === 0) return created;
    const kept = { ...created, ...dropped, ...(group && { customerGroup: group }), customerGroupAssignments: assignments };
    await storage.add(context.projectKey, 'customer', kept);
    return kept;
  };
}

/**
 * The emulator gives a cart's `totalPrice` `fractionDigits: 0` whatever its currency (CartRepository.create writes
 * 0 and only the cent amount is recomputed after, as of @labdigital/commercetools-mock 4.4.0), and an order created
 * from the cart copies it: 183.00 GBP reads as 18,300 GBP to anyone who honours the field, as Momentis' points do.
 * In commercetools a CentPrecisionMoney's fractionDigits are the currency's default, 2 for EUR and GBP
 * (https://docs.commercetools.com/api/types#centprecisionmoney). The cart is corrected after its create and after
 * every update, with the digits its line items' prices carry (the currency's), so orders from it are right too.
 */
function keepCartFractionDigits(mock: CommercetoolsMock, projectKey: string): void {
  const project = mock.project(projectKey);
  const storage = project.config.storage;
  const carts = project.getRepository('cart') as unknown as {
    create: (context: { projectKey: string }, draft: unknown) => Promise<Cart>;
    actions: { apply: (context: { projectKey: string }, resource: Cart, version: number, actions: unknown[]) => Promise<Cart> };
  };
  const correct = async (cart: Writable<Cart>): Promise<Cart> => {
    const digits = cart.lineItems.find((item) => item.price.value.currencyCode === cart.totalPrice.currencyCode)?.price.value.fractionDigits ?? currencyFractionDigits(cart.totalPrice.currencyCode);
    if (cart.totalPrice.fractionDigits === digits) return cart;
    cart.totalPrice = { ...cart.totalPrice, fractionDigits: digits };
    await storage.add(projectKey, 'cart', cart);
    return cart;
  };
  const create = carts.create.bind(carts);
  carts.create = async (context, draft) => correct(await create(context, draft));
  const apply = carts.actions.apply.bind(carts.actions);
  carts.actions.apply = async (context, resource, version, actions) => correct(await apply(context, resource, version, actions));
}

type Writable<T> = { -readonly [K in keyof T]: T[K] };

/** ISO 4217 minor units, for a cart without line items: 2 but for the currencies with none or three. */
function currencyFractionDigits(currencyCode: string): number {
  if (['JPY', 'KRW', 'CLP', 'ISK', 'VND', 'XAF', 'XOF'].includes(currencyCode)) return 0;
  if (['BHD', 'JOD', 'KWD', 'OMR', 'TND'].includes(currencyCode)) return 3;
  return 2;
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const projectKey = options.projectKey ?? 'ctbridge-sandbox';
  const clientId = options.clientId ?? `sandbox-${randomBytes(6).toString('hex')}`;
  const clientSecret = options.clientSecret ?? randomBytes(24).toString('base64url');
  const mock = new CommercetoolsMock({
    enableAuthentication: true,
    validateCredentials: true,
    defaultProjectKey: projectKey,
    silent: true,
  });
  keepCustomerDraft(mock, projectKey);
  keepCartFractionDigits(mock, projectKey);
  addOrderActions(mock, projectKey);
  honourSortAndTotal(mock, projectKey);
  addDiscountRules(mock, projectKey);
  addMessagesApi(mock, projectKey);

  // The emulator checks that API calls carry a token it issued, but hands a token to any client id and secret.
  // Real commercetools rejects a wrong secret with 401 invalid_client; do the same so that path is testable.
  let tokenRequests = 0;
  let apiRequests = 0;
  mock.app.addHook('onRequest', async (request, reply) => {
    if (!request.url.startsWith('/oauth/')) {
      apiRequests += 1;
      return;
    }
    const credentials = parseBasicAuth(request.headers.authorization);
    if (!credentials || credentials.clientId !== clientId || credentials.clientSecret !== clientSecret) {
      await reply.code(401).header('content-type', 'application/json').send(invalidClientBody());
      return reply;
    }
    if (request.url.startsWith('/oauth/token')) tokenRequests += 1;
  });

  // runServer() binds 0.0.0.0 on a fixed port; the sandbox must stay on loopback and tests need a free port.
  await mock.app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  const { port } = mock.app.server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;

  let closed: Promise<void> | undefined;
  return {
    projectKey,
    authUrl: baseUrl,
    apiUrl: baseUrl,
    clientId,
    clientSecret,
    get tokenRequests() {
      return tokenRequests;
    },
    get apiRequests() {
      return apiRequests;
    },
    mock,
    close() {
      closed ??= mock.app.close();
      return closed;
    },
  };
}
