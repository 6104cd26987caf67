// The sandbox's storefront: shoppers' browsers on the seeded shop sending behaviour events (product views, adds to
// cart, checkouts, searches) to ctbridge's POST /v1/events/storefront with the storefront's publishable key and
// the Origin a page of the shop would send, as the README's fetch example does; now and then a browser sends an
// event again (a retry after a lost answer), which ctbridge delivers once. It remembers what was accepted, so the
// sandbox can check at the end that each event reached the sink exactly once.
import { randomUUID } from 'node:crypto';
import type { StorefrontEventKind } from '../ingest/storefront-events.ts';
import type { Random, SeededShop } from './seed.ts';

/** The origin of the sandbox storefront's pages (what a local shop front-end in development would be). */
export const SANDBOX_STOREFRONT_ORIGIN = 'http://localhost:3000';
export const SANDBOX_STOREFRONT_NAME = 'web';

const QUERIES = ['running shoes', 'rain jacket', 'gift card', 'wool socks', 'backpack'];

export interface StorefrontSend {
  kind: StorefrontEventKind;
  store: string;
  /** Who the shopper was: a logged-in customer's id, or "anonymous". */
  shopper: string;
  status: number;
  /** The same event sent twice (a browser retrying). */
  repeated: boolean;
}

export class SandboxStorefront {
  /** Event ids ctbridge accepted (202). */
  readonly accepted = new Set<string>();
  readonly #url: string;
  readonly #key: string;
  readonly #random: Random;
  readonly #shop: SeededShop;

  constructor(deps: { url: string; key: string; random: Random; shop: SeededShop }) {
    this.#url = `${deps.url}/v1/events/storefront`;
    this.#key = deps.key;
    this.#random = deps.random;
    this.#shop = deps.shop;
  }

  /** One shopper does one thing: a random kind, by a logged-in customer or an anonymous visitor. */
  async browse(): Promise<StorefrontSend> {
    const random = this.#random;
    const customer = random.chance(0.6) ? random.pick(this.#shop.customers) : undefined;
    const store = this.#shop.stores.find((s) => s.key === customer?.storeKey) ?? random.pick(this.#shop.stores);
    const kind = random.pick(['ProductViewed', 'ProductViewed', 'ProductAddedToCart', 'CheckoutStarted', 'ProductsSearched'] as const);
    const productId = random.pick(this.#shop.productIds);
    const cartId = randomUUID();
    const event: Record<string, unknown> = {
      id: randomUUID(),
      type: kind,
      occurredAt: new Date().toISOString(),
      store: store.key,
      locale: store.languages[0],
      currency: store.currency,
      shopper: customer ? { customerId: customer.id } : { anonymousId: `anon-${random.digits(8)}` },
      ...(kind === 'ProductViewed' && { product: { id: productId, variantId: 1 } }),
      ...(kind === 'ProductAddedToCart' && { product: { id: productId, variantId: 1 }, quantity: random.int(1, 3), cart: { id: cartId } }),
      ...(kind === 'CheckoutStarted' && { cart: { id: cartId, lineItemCount: random.int(1, 4) } }),
      ...(kind === 'ProductsSearched' && { search: { query: random.pick(QUERIES), results: random.int(0, 40) } }),
    };
    const repeated = random.chance(0.2);
    let status = await this.#post(event);
    if (repeated && status === 202) status = await this.#post(event);
    if (status === 202) this.accepted.add(event.id as string);
    return { kind, store: store.key, shopper: customer ? customer.id : 'anonymous', status, repeated };
  }

  async #post(event: Record<string, unknown>): Promise<number> {
    try {
      const answer = await fetch(this.#url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', origin: SANDBOX_STOREFRONT_ORIGIN, 'x-storefront-key': this.#key },
        body: JSON.stringify(event),
      });
      await answer.body?.cancel();
      return answer.status;
    } catch {
      return 0;
    }
  }
}
