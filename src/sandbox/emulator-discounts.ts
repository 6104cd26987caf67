// Discount codes in the emulator as commercetools applies them, where @labdigital/commercetools-mock 4.4.0 only
// stores them: the mock drops a DiscountCodeDraft's `key` (so GET /discount-codes/key=… never finds one) and its
// `isActive: false`, defaults a CartDiscount to inactive, checks no uniqueness, and adds any existing code to a cart
// as `MatchesCart` and into an order, however often, for whichever customer. Rewards that are single-use codes bound
// to one customer depend on exactly those rules, so they are added here, after the commercetools API reference
// (commercetools/commercetools-api-reference, api-specs/api/types):
// - discount-code/DiscountCodeDraft.raml: `key` (unique, ^[A-Za-z0-9_-]+$, 2-256 characters) and `code` are unique
//   in the project (400 DuplicateField otherwise); `isActive` defaults to true; `cartDiscounts` are given by id or key.
// - cart-discount/CartDiscountDraft.raml: `isActive` defaults to true; `key` is unique; `sortOrder` "must be
//   unambiguous among all cart discounts" (400 DuplicateField); `stores`, when set, limit it to carts of those Stores.
// - cart/DiscountCodeState.raml: a code in a cart is NotActive (it or all its cart discounts inactive), NotValid
//   (outside validFrom/validUntil of it or of all its cart discounts), MaxApplicationReached (`maxApplications` or
//   `maxApplicationsPerCustomer` used up), DoesNotMatchCart (its `cartPredicate`, or every active discount's, does not
//   match the cart) or MatchesCart. Add DiscountCode keeps the code with that state (cart/updates/
//   CartAddDiscountCodeAction.raml: a code added to a frozen cart is kept as DoesNotMatchCart; an unknown code is
//   400 DiscountCodeNonApplicable, reason DoesNotExist, as the mock already answers), and a cart update recomputes
//   the states.
// - error/DiscountCodeNonApplicableError.raml: Create Cart with such a code in its draft, and Create Order from Cart
//   with a code in any state but MatchesCart, are 400 DiscountCodeNonApplicable, and nothing is created. (Earlier
//   revisions of that file listed Add DiscountCode among the requests refused too; the current one, as generated
//   into the SDKs, e.g. commercetools-sdk-java-v2 commit e14e9636, no longer does.)
// - discount-code/DiscountCode.raml `maxApplications`: "DiscountCode application is counted at the time of Order
//   creation"; cancelling or deleting the order does not give the application back.
// Cart predicates are evaluated for the part of the predicate language ctbridge writes and tests use
// (https://docs.commercetools.com/api/projects/predicates: `customer.id`, `currency`, `country`, string and
// boolean literals, `=`, `!=`, `in (…)`, `and`, `or`, `not`, parentheses, and `1 = 1`); a predicate outside it is
// refused when the discount or code is created (400 InvalidInput naming the emulator's limit) rather than
// silently matching or not. Prices are not reduced: totals stay as the mock computes them.
import type { CommercetoolsMock } from '@labdigital/commercetools-mock';
import type { Cart, CartDiscount, DiscountCode, DiscountCodeInfo } from '@commercetools/platform-sdk';

interface RepositoryContext {
  projectKey: string;
}

type ErrorClass = new (info: Record<string, unknown>, status: number) => Error;

interface Storage {
  get(projectKey: string, typeId: string, id: string): Promise<unknown>;
  getByKey(projectKey: string, typeId: string, key: string): Promise<unknown>;
  getByResourceIdentifier(projectKey: string, identifier: { typeId: string; id?: string; key?: string }): Promise<unknown>;
  query(projectKey: string, typeId: string, params: { where?: string[] }): Promise<{ count: number; results: unknown[] }>;
  add(projectKey: string, typeId: string, resource: unknown): Promise<unknown>;
  delete(projectKey: string, typeId: string, id: string): Promise<unknown>;
}

const KEY_PATTERN = /^[A-Za-z0-9_-]{2,256}$/;

export interface DiscountRulesOptions {
  /** The clock validity periods are checked against. Default Date.now. */
  now?: () => number;
}

export function addDiscountRules(mock: CommercetoolsMock, projectKey: string, options: DiscountRulesOptions = {}): void {
  const now = options.now ?? Date.now;
  const project = mock.project(projectKey);
  const storage = project.config.storage as unknown as Storage;
  const codes = project.getRepository('discount-code') as unknown as { create: (context: RepositoryContext, draft: Record<string, unknown>) => Promise<DiscountCode>; actions: Record<string, unknown> };
  const discounts = project.getRepository('cart-discount') as unknown as {
    create: (context: RepositoryContext, draft: Record<string, unknown>) => Promise<CartDiscount>;
    transformValueDraft: (value: unknown) => unknown;
    actions: Record<string, unknown>;
  };
  const carts = project.getRepository('cart') as unknown as {
    create: (context: RepositoryContext, draft: Record<string, unknown>) => Promise<Cart>;
    actions: { apply: (context: RepositoryContext, resource: Cart, version: number, actions: unknown[]) => Promise<Cart>; addDiscountCode: unknown };
  };
  const orders = project.getRepository('order') as unknown as { createFromCart: (context: RepositoryContext, cart: { typeId: 'cart'; id: string }, orderNumber?: string) => Promise<unknown> };
  const errorClass = errorClassOf(discounts.actions);
  const fail = (status: number, info: Record<string, unknown>): Error => new errorClass(info, status);

  /** Applications counted per code at order creation: in total and per customer. */
  const applications = new Map<string, { total: number; perCustomer: Map<string, number> }>();
  const applied = (codeId: string) => applications.get(codeId) ?? { total: 0, perCustomer: new Map<string, number>() };
  const exhausted = (code: DiscountCode, customerId: string | undefined): boolean => {
    const used = applied(code.id);
    const customerUses = customerId ? (used.perCustomer.get(customerId) ?? 0) : 0;
    return (typeof code.maxApplications === 'number' && used.total >= code.maxApplications) || (typeof code.maxApplicationsPerCustomer === 'number' && customerUses >= code.maxApplicationsPerCustomer);
  };

  const unique = async (typeId: string, field: string, value: unknown): Promise<void> => {
    if (typeof value !== 'string') return;
    const found = await storage.query(projectKey, typeId, { where: [`${field}=${JSON.stringify(value)}`] });
    if (found.count > 0) throw fail(400, { code: 'DuplicateField', message: `A duplicate value '"${value}"' exists for field '${field}'.`, field, duplicateValue: value });
  };
  const checkKey = (key: unknown): void => {
    if (key !== undefined && (typeof key !== 'string' || !KEY_PATTERN.test(key))) {
      throw fail(400, { code: 'InvalidInput', message: `key must match ^[A-Za-z0-9_-]+$ and be 2 to 256 characters long.` });
    }
  };
  const checkPredicate = (predicate: unknown, what: string): void => {
    if (predicate === undefined || predicate === null) return;
    if (typeof predicate !== 'string') throw fail(400, { code: 'InvalidInput', message: `${what} must be a string.` });
    try {
      parseCartPredicate(predicate);
    } catch (error) {
      throw fail(400, { code: 'InvalidInput', message: `${what}: ${(error as Error).message} (the emulator evaluates only ${SUPPORTED_PREDICATES})` });
    }
  };

  // Creates run one at a time, so that the uniqueness checks and the insert are one step as they are in
  // commercetools: two racing creates of one key make one resource and one DuplicateField.
  let creating: Promise<unknown> = Promise.resolve();
  const serially = <T>(work: () => Promise<T>): Promise<T> => {
    const run = creating.then(work);
    creating = run.catch(() => undefined);
    return run;
  };

  const createDiscount = discounts.create.bind(discounts);
  discounts.create = (context, draft) =>
    serially(async () => {
      checkKey(draft.key);
      checkPredicate(draft.cartPredicate, 'cartPredicate');
      await unique('cart-discount', 'key', draft.key);
      await unique('cart-discount', 'sortOrder', draft.sortOrder);
      const created = await createDiscount(context, draft);
      if (draft.isActive !== undefined) return created;
      const kept = { ...created, isActive: true };
      await storage.add(projectKey, 'cart-discount', kept);
      return kept;
    });
  // Update actions the mock lacks that keep a reward's discount as it should be (CartDiscountChangeValueAction,
  // CartDiscountChangeCartPredicateAction).
  discounts.actions.changeValue = (_context: RepositoryContext, resource: CartDiscount, action: { value: unknown }) => {
    (resource as { value: unknown }).value = discounts.transformValueDraft(action.value);
  };
  discounts.actions.changeCartPredicate = (_context: RepositoryContext, resource: CartDiscount, action: { cartPredicate: string }) => {
    checkPredicate(action.cartPredicate, 'cartPredicate');
    (resource as { cartPredicate: string }).cartPredicate = action.cartPredicate;
  };

  const createCode = codes.create.bind(codes);
  codes.create = (context, draft) =>
    serially(async () => {
      checkKey(draft.key);
      checkPredicate(draft.cartPredicate, 'cartPredicate');
      await unique('discount-code', 'key', draft.key);
      await unique('discount-code', 'code', draft.code);
      const cartDiscounts = [];
      for (const identifier of (draft.cartDiscounts as { id?: string; key?: string }[] | undefined) ?? []) {
        const discount = (await storage.getByResourceIdentifier(projectKey, { ...identifier, typeId: 'cart-discount' })) as CartDiscount;
        cartDiscounts.push({ typeId: 'cart-discount', id: discount.id });
      }
      const created = await createCode(context, { ...draft, cartDiscounts });
      const kept = { ...created, ...(typeof draft.key === 'string' && { key: draft.key }), isActive: draft.isActive !== false };
      await storage.add(projectKey, 'discount-code', kept);
      return kept;
    });
  const setCartPredicate = (codes.actions.setCartPredicate as (context: RepositoryContext, resource: DiscountCode, action: { cartPredicate?: string }) => void).bind(codes.actions);
  codes.actions.setCartPredicate = (context: RepositoryContext, resource: DiscountCode, action: { cartPredicate?: string }) => {
    checkPredicate(action.cartPredicate, 'cartPredicate');
    setCartPredicate(context, resource, action);
  };

  /** The DiscountCodeState of one code in this cart, now. */
  const stateOf = async (cart: Cart, codeId: string): Promise<DiscountCodeInfo['state']> => {
    const code = (await storage.get(projectKey, 'discount-code', codeId)) as DiscountCode | undefined;
    if (!code) return 'NotActive';
    const cartDiscounts = (await Promise.all(code.cartDiscounts.map((reference) => storage.get(projectKey, 'cart-discount', reference.id)))).filter(Boolean) as CartDiscount[];
    const active = cartDiscounts.filter((discount) => discount.isActive);
    if (!code.isActive || active.length === 0) return 'NotActive';
    const at = now();
    const within = (from?: string, until?: string) => (!from || Date.parse(from) <= at) && (!until || at < Date.parse(until));
    const valid = active.filter((discount) => within(discount.validFrom, discount.validUntil));
    if (!within(code.validFrom, code.validUntil) || valid.length === 0) return 'NotValid';
    if (exhausted(code, cart.customerId)) return 'MaxApplicationReached';
    const matches = (predicate: string | undefined) => predicate === undefined || evaluateCartPredicate(parseCartPredicate(predicate), cart);
    const inStore = (discount: CartDiscount) => !discount.stores || discount.stores.length === 0 || discount.stores.some((store) => store.key === cart.store?.key);
    if (!matches(code.cartPredicate) || !valid.some((discount) => inStore(discount) && matches(discount.cartPredicate))) return 'DoesNotMatchCart';
    return 'MatchesCart';
  };
  const recompute = async (cart: Cart): Promise<boolean> => {
    let changed = false;
    for (const info of cart.discountCodes ?? []) {
      const state = await stateOf(cart, info.discountCode.id);
      if (info.state !== state) {
        (info as { state: DiscountCodeInfo['state'] }).state = state;
        changed = true;
      }
    }
    return changed;
  };

  const nonApplicable = (codeId: string, code: string | undefined) =>
    fail(400, { code: 'DiscountCodeNonApplicable', message: `The discountCode ${codeId} cannot be applied to the cart.`, discountCodeId: codeId, ...(code !== undefined && { discountCode: code }) });
  const refusedIn = async (cart: Cart): Promise<Error | undefined> => {
    const refused = (cart.discountCodes ?? []).find((info) => info.state !== 'MatchesCart');
    if (!refused) return undefined;
    const code = (await storage.get(projectKey, 'discount-code', refused.discountCode.id)) as DiscountCode | undefined;
    return nonApplicable(refused.discountCode.id, code?.code);
  };

  // A cart created with codes in its draft is refused (nothing stored) when one of them does not match it.
  const createCart = carts.create.bind(carts);
  carts.create = async (context, draft) => {
    const created = await createCart(context, draft);
    if (!(await recompute(created))) return created;
    const refused = await refusedIn(created);
    if (refused) {
      await storage.delete(projectKey, 'cart', created.id);
      throw refused;
    }
    await storage.add(projectKey, 'cart', created);
    return created;
  };
  // Every cart update (Add DiscountCode among them) ends with the codes' states as they are after it.
  const apply = carts.actions.apply.bind(carts.actions);
  carts.actions.apply = async (context, resource, version, actions) => {
    const updated = await apply(context, resource, version, actions);
    await recompute(updated);
    return updated;
  };

  const createFromCart = orders.createFromCart.bind(orders);
  orders.createFromCart = async (context, reference, orderNumber) => {
    const cart = (await storage.getByResourceIdentifier(projectKey, reference).catch(() => undefined)) as Cart | undefined;
    if (!cart) return createFromCart(context, reference, orderNumber);
    await recompute(cart);
    const infos = cart.discountCodes ?? [];
    const refused = await refusedIn(cart);
    if (refused) throw refused;
    // Counted before the order is written, with no wait between the check and the count, so two orders racing
    // for a code's last application cannot both have it; given back if the order is not created.
    const infoCodes = (await Promise.all(infos.map((info) => storage.get(projectKey, 'discount-code', info.discountCode.id)))) as DiscountCode[];
    const usedUp = infoCodes.find((code) => exhausted(code, cart.customerId));
    if (usedUp) throw nonApplicable(usedUp.id, usedUp.code);
    const counted = infoCodes.map((code) => code.id);
    for (const id of counted) {
      const used = applied(id);
      used.total += 1;
      if (cart.customerId) used.perCustomer.set(cart.customerId, (used.perCustomer.get(cart.customerId) ?? 0) + 1);
      applications.set(id, used);
    }
    await storage.add(projectKey, 'cart', cart);
    try {
      return await createFromCart(context, reference, orderNumber);
    } catch (error) {
      for (const id of counted) {
        const used = applied(id);
        used.total -= 1;
        if (cart.customerId) used.perCustomer.set(cart.customerId, (used.perCustomer.get(cart.customerId) ?? 1) - 1);
      }
      throw error;
    }
  };
}

/** The mock's CommercetoolsError class (not exported by the package), taken from an error its handlers throw. */
function errorClassOf(handler: Record<string, unknown>): ErrorClass {
  try {
    (handler.setCustomField as (context: object, resource: object, action: object) => void).call(handler, {}, {}, { name: 'probe', value: null });
  } catch (error) {
    return (error as Error).constructor as ErrorClass;
  }
  throw new Error('the emulator did not refuse a custom field on a resource without a custom type');
}

type Predicate =
  | { kind: 'and' | 'or'; left: Predicate; right: Predicate }
  | { kind: 'not'; operand: Predicate }
  | { kind: 'compare'; op: '=' | '!='; left: Operand; right: Operand }
  | { kind: 'in'; left: Operand; values: Operand[] }
  | { kind: 'literal'; value: boolean };
type Operand = { kind: 'field'; name: string } | { kind: 'value'; value: string | number | boolean };

const FIELDS = new Set(['customer.id', 'currency', 'country']);
const SUPPORTED_PREDICATES = `${[...FIELDS].join(', ')} compared with =, != or in (…), joined by and, or, not and parentheses`;
const TOKEN = /\s*(?:("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?)|(!=|=|\(|\)|,)|([A-Za-z_][A-Za-z0-9_.]*))/y;

/** Parses the part of the cart predicate language the emulator evaluates; anything else throws, naming it. */
export function parseCartPredicate(text: string): Predicate {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < text.length) {
    if (/^\s*$/.test(text.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(text);
    if (!match) throw new Error(`the predicate cannot be read at character ${at + 1}`);
    tokens.push(match[0].trim());
  }
  let position = 0;
  const peek = () => tokens[position];
  const next = () => tokens[position++];
  const expect = (token: string) => {
    if (next() !== token) throw new Error(`"${token}" was expected in the predicate`);
  };
  const operand = (): Operand => {
    const token = next();
    if (token === undefined) throw new Error('the predicate ends too early');
    if (token.startsWith('"')) return { kind: 'value', value: JSON.parse(token) as string };
    if (/^-?\d/.test(token)) return { kind: 'value', value: Number(token) };
    if (token === 'true' || token === 'false') return { kind: 'value', value: token === 'true' };
    if (!FIELDS.has(token)) throw new Error(`the field ${token} is not one it knows`);
    return { kind: 'field', name: token };
  };
  const primary = (): Predicate => {
    const token = peek();
    if (token === '(') {
      next();
      const inner = or();
      expect(')');
      return inner;
    }
    if (token?.toLowerCase() === 'not') {
      next();
      return { kind: 'not', operand: primary() };
    }
    if ((token === 'true' || token === 'false') && !['=', '!=', 'in'].includes(tokens[position + 1]?.toLowerCase() ?? '')) {
      next();
      return { kind: 'literal', value: token === 'true' };
    }
    const left = operand();
    const op = next()?.toLowerCase();
    if (op === '=' || op === '!=') return { kind: 'compare', op, left, right: operand() };
    if (op === 'in') {
      expect('(');
      const values = [operand()];
      while (peek() === ',') {
        next();
        values.push(operand());
      }
      expect(')');
      return { kind: 'in', left, values };
    }
    throw new Error(`the operator ${op ?? '(none)'} is not one it knows`);
  };
  const and = (): Predicate => {
    let left = primary();
    while (peek()?.toLowerCase() === 'and') {
      next();
      left = { kind: 'and', left, right: primary() };
    }
    return left;
  };
  const or = (): Predicate => {
    let left = and();
    while (peek()?.toLowerCase() === 'or') {
      next();
      left = { kind: 'or', left, right: and() };
    }
    return left;
  };
  const predicate = or();
  if (position < tokens.length) throw new Error(`the predicate cannot be read from "${tokens[position]}" on`);
  return predicate;
}

function evaluateCartPredicate(predicate: Predicate, cart: Cart): boolean {
  const valueOf = (operand: Operand): unknown => {
    if (operand.kind === 'value') return operand.value;
    if (operand.name === 'customer.id') return cart.customerId;
    if (operand.name === 'currency') return cart.totalPrice?.currencyCode;
    return cart.country;
  };
  switch (predicate.kind) {
    case 'and':
      return evaluateCartPredicate(predicate.left, cart) && evaluateCartPredicate(predicate.right, cart);
    case 'or':
      return evaluateCartPredicate(predicate.left, cart) || evaluateCartPredicate(predicate.right, cart);
    case 'not':
      return !evaluateCartPredicate(predicate.operand, cart);
    case 'literal':
      return predicate.value;
    case 'compare': {
      const left = valueOf(predicate.left);
      const right = valueOf(predicate.right);
      // A field the cart lacks (an anonymous cart's customer) matches neither = nor !=.
      if (left === undefined || right === undefined) return false;
      return predicate.op === '=' ? left === right : left !== right;
    }
    case 'in': {
      const left = valueOf(predicate.left);
      return left !== undefined && predicate.values.some((value) => valueOf(value) === left);
    }
  }
}
