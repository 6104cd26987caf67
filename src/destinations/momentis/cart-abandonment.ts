// Abandoned carts: a cart whose creation reached Momentis and that no order came from within the idle time
// (`cartAbandonment.idleMinutes`) becomes a `cart.abandoned` interaction on its member's timeline, once. The cart
// waits in the connector's state (the store, shared by every process) under `abandon:<cart id>` with when it is due;
// an order placed from it marks it ordered (also before its creation arrives: messages come in any order). A look
// (every `cartAbandonment.checkMs`, by the injected clock for what is due) takes each due cart — the take decides
// which process sends it — and sends the interaction with the cart's market context; a send that fails puts the cart
// back for the next look (the interaction's id is stable, so a repeat is a duplicate at Momentis, never a second
// interaction). Its time is when the idle time ended.
import type { EventItem, ItemOutcome } from '../kit/index.ts';
import type { RestClient } from '../rest/client.ts';

const PREFIX = 'abandon:';
const PAGE = 200;

interface Waiting {
  /** An order came from the cart (perhaps before its creation reached us): kept until dueAt, so it never waits. */
  ordered?: true;
  customerId: string;
  cartId: string;
  dueAt: number;
  context: unknown;
  link: string | undefined;
}

export interface CartAbandonment {
  /** A cart reached Momentis: it waits for an order until `at` + the idle time. */
  created(item: EventItem, cartId: string, at: number): Promise<void>;
  /** An order came from the cart at `at`: it is not abandoned. */
  ordered(item: EventItem, cartId: string, at: number): Promise<void>;
  /** Sends the due carts' interactions; how many went. */
  sweep(): Promise<number>;
}

export function createCartAbandonment(client: RestClient, options: { idleMs: number; checkMs: number; send: (item: EventItem) => Promise<ItemOutcome> }): CartAbandonment {
  const state = client.state;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;

  const sweepOnce = async (): Promise<number> => {
    if (!state) return 0;
    const now = client.now();
    let sent = 0;
    let after: string | undefined;
    for (let more = true; more; ) {
      const page = await state.list(PREFIX, { limit: PAGE, ...(after !== undefined && { after }) });
      more = page.length === PAGE;
      after = page.at(-1)?.key;
      for (const { key, value } of page) {
        const waiting = value as Waiting;
        if (waiting.dueAt > now) continue;
        // Taken by this process, or by another one first: then it is theirs to send.
        if ((await state.take([key])).length === 0 || waiting.ordered) continue;
        const item: EventItem = {
          eventType: 'interactions',
          sourceType: 'CartAbandoned',
          resource: { typeId: 'cart', id: waiting.cartId },
          payload: { type: 'cart.abandoned', occurredAt: new Date(waiting.dueAt).toISOString(), context: waiting.context, ...(waiting.link !== undefined && { link: waiting.link }), data: { cartId: waiting.cartId } },
          idempotencyKey: `cart-abandoned:${waiting.cartId}`,
          correlationId: `cart-abandoned:${waiting.cartId}`,
          occurredAt: waiting.dueAt,
          target: undefined,
          person: { key: `customer:${waiting.customerId}`, destinationId: undefined },
        };
        const outcome = await options.send(item).catch((error: unknown) => ({ ok: false as const, error }));
        if (outcome.ok) {
          sent += 1;
          continue;
        }
        await state.put([{ key, value: waiting, subject: waiting.customerId }]);
        client.logger.warn({ cartId: waiting.cartId, error: String((outcome.error as Error).message ?? outcome.error) }, 'sending an abandoned cart failed; tried again at the next look');
      }
    }
    return sent;
  };

  const start = () => {
    if (timer !== undefined || !state) return;
    timer = setInterval(() => void abandonment.sweep().catch((error: unknown) => client.logger.warn({ err: error }, 'looking for abandoned carts failed; tried again at the next look')), options.checkMs);
    timer.unref();
    client.onClose(() => clearInterval(timer));
  };

  const abandonment: CartAbandonment = {
    async created(item, cartId, at) {
      const customerId = item.person?.key.slice('customer:'.length);
      if (!state || !customerId) return;
      start();
      const key = `${PREFIX}${cartId}`;
      // Its order was placed already (the messages came in another order): nothing to wait for.
      if (((await state.get([key])).get(key) as Waiting | undefined)?.ordered) return;
      const waiting: Waiting = { customerId, cartId, dueAt: at + options.idleMs, context: item.payload.context ?? {}, link: typeof item.payload.link === 'string' ? item.payload.link : undefined };
      await state.put([{ key: `${PREFIX}${cartId}`, value: waiting, subject: customerId }]);
    },
    async ordered(item, cartId, at) {
      const customerId = item.person?.key.slice('customer:'.length);
      if (!state || !customerId) return;
      start();
      await state.put([{ key: `${PREFIX}${cartId}`, value: { ordered: true, customerId, cartId, dueAt: Math.max(at, client.now()) + options.idleMs, context: {}, link: undefined } satisfies Waiting, subject: customerId }]);
    },
    sweep() {
      // One look at a time in this process.
      running ??= sweepOnce().finally(() => (running = undefined));
      return running;
    },
  };
  return abandonment;
}
