// Order update actions the emulator (@labdigital/commercetools-mock 4.4.0) does not implement, added to its order
// repository so that agent actions (src/actions) run the real update actions against it: `transitionLineItemState`
// and `transitionCustomLineItemState`; `transitionState` checks the current State's transitions; a State created
// without transitions has none (not an empty list). Also: an update of one order or payment is applied atomically
// against its version, as commercetools does, so that concurrent writers see 409 ConcurrentModification instead of
// interleaving (the emulator's own update path awaits between reading and saving a resource).
//
// Behaviour follows the commercetools API reference (https://docs.commercetools.com/api/projects/orders, "Transition
// LineItem State"; the SDK's OrderTransitionLineItemStateAction): `quantity` items of the line item (by `lineItemId`
// or `lineItemKey`) move from `fromState` to `toState`; both are States of type LineItemState, given by id or key;
// the line item must hold at least `quantity` items in `fromState`; if `fromState` sets `transitions`, `toState` must
// be among them (an empty list makes `fromState` final). A line item's `state` is a list of ItemState `{ quantity,
// state: { typeId: 'state', id } }`, one entry per State; an entry that reaches 0 is removed.
import type { CommercetoolsMock } from '@labdigital/commercetools-mock';
import type { ItemState, Order, State, StateResourceIdentifier } from '@commercetools/platform-sdk';

interface RepositoryContext {
  projectKey: string;
}

type ErrorClass = new (info: Record<string, unknown>, status: number) => Error;
let errorClass: ErrorClass | undefined;

/**
 * The error the emulator answers with (its CommercetoolsError: status, code, message). The package does not export
 * the class; it is taken from an error the emulator's own update handler throws (see addOrderActions).
 */
function commercetoolsError(status: number, info: Record<string, unknown>): Promise<Error> {
  if (!errorClass) return Promise.resolve(Object.assign(new Error(String(info.message)), { statusCode: status }));
  return Promise.resolve(new errorClass(info, status));
}

type LineLike = { id: string; key?: string; quantity: number; state: ItemState[] };

async function resolveState(storage: Storage, context: RepositoryContext, identifier: StateResourceIdentifier | undefined, role: string): Promise<State> {
  if (!identifier || (!identifier.id && !identifier.key)) {
    throw await commercetoolsError(400, { code: 'InvalidInput', message: `${role} must be a State given by id or key.` });
  }
  let state: State | undefined;
  try {
    state = (await storage.getByResourceIdentifier(context.projectKey, { ...identifier, typeId: 'state' })) as State | undefined;
  } catch {
    state = undefined;
  }
  if (!state) {
    throw await commercetoolsError(400, {
      code: 'ReferencedResourceNotFound',
      message: `The referenced object of type 'state' ${identifier.id ? `with id '${identifier.id}'` : `with key '${identifier.key}'`} was not found.`,
      typeId: 'state',
      ...(identifier.id ? { id: identifier.id } : { key: identifier.key }),
    });
  }
  if (state.type !== 'LineItemState') {
    throw await commercetoolsError(400, { code: 'InvalidOperation', message: `State '${state.key ?? state.id}' is not of type LineItemState.` });
  }
  return state;
}

interface Storage {
  getByResourceIdentifier(projectKey: string, identifier: { typeId: string; id?: string; key?: string }): Promise<unknown>;
}

async function transition(
  storage: Storage,
  context: RepositoryContext,
  item: LineLike,
  what: string,
  action: { quantity: number; fromState: StateResourceIdentifier; toState: StateResourceIdentifier },
): Promise<void> {
  if (!Number.isInteger(action.quantity) || action.quantity < 1) {
    throw await commercetoolsError(400, { code: 'InvalidInput', message: `quantity must be a positive whole number (got ${String(action.quantity)}).` });
  }
  const from = await resolveState(storage, context, action.fromState, 'fromState');
  const to = await resolveState(storage, context, action.toState, 'toState');
  if (from.transitions !== undefined && !from.transitions.some((reference) => reference.id === to.id)) {
    throw await commercetoolsError(400, { code: 'InvalidOperation', message: `Transition from state '${from.key ?? from.id}' to state '${to.key ?? to.id}' is not allowed.` });
  }
  const held = item.state.find((entry) => entry.state.id === from.id);
  if (!held || held.quantity < action.quantity) {
    throw await commercetoolsError(400, {
      code: 'InvalidOperation',
      message: `${what} '${item.id}' has ${held?.quantity ?? 0} item(s) in state '${from.key ?? from.id}', fewer than the ${action.quantity} to transition.`,
    });
  }
  const states = item.state.map((entry) => ({ ...entry, state: { ...entry.state } }));
  const source = states.find((entry) => entry.state.id === from.id)!;
  source.quantity -= action.quantity;
  const target = states.find((entry) => entry.state.id === to.id);
  if (target) target.quantity += action.quantity;
  else states.push({ quantity: action.quantity, state: { typeId: 'state', id: to.id } });
  item.state = states.filter((entry) => entry.quantity > 0);
}

async function findItem<T extends LineLike>(items: T[] | undefined, id: string | undefined, key: string | undefined, what: string): Promise<T> {
  const item = (items ?? []).find((candidate) => (id !== undefined ? candidate.id === id : key !== undefined && candidate.key === key));
  if (!item) {
    throw await commercetoolsError(400, { code: 'InvalidOperation', message: `${what} with ${id !== undefined ? `id '${id}'` : `key '${key ?? ''}'`} not found.` });
  }
  return item;
}

/** Serialises updates per resource id, so the version check and the save of one update are not interleaved. */
function serialiseUpdates(repository: { processUpdateActions: (context: RepositoryContext, resource: { id: string; version: number }, version: number, actions: unknown[]) => Promise<unknown> }): void {
  const original = repository.processUpdateActions.bind(repository);
  const tails = new Map<string, Promise<unknown>>();
  repository.processUpdateActions = (context, resource, version, actions) => {
    const previous = tails.get(resource.id) ?? Promise.resolve();
    // The resource the emulator read before the update waited its turn may be stale: commercetools compares the
    // expected version with the current one, which saveUpdate does, and apply compares with the one read here.
    const run = previous.then(async () => {
      const current = (await (repository as unknown as { get: (c: RepositoryContext, id: string) => Promise<{ id: string; version: number } | null> }).get(context, resource.id)) ?? resource;
      return original(context, current, version, actions);
    });
    const tail = run.catch(() => undefined);
    tails.set(resource.id, tail);
    void tail.then(() => {
      if (tails.get(resource.id) === tail) tails.delete(resource.id);
    });
    return run;
  };
}

/**
 * The emulator creates a State without `transitions` in its draft with `transitions: []`, which commercetools reads
 * as a final State; commercetools leaves the field unset, meaning any transition is allowed ("If transitions is
 * not set, the validation is turned off", StateDraft in the API reference). A State created without it is stored
 * without it here.
 */
function keepTransitionsUnset(project: ReturnType<CommercetoolsMock['project']>): void {
  const states = project.getRepository('state') as unknown as { create: (context: RepositoryContext, draft: { transitions?: unknown }) => Promise<State> };
  const storage = project.config.storage as unknown as { add: (projectKey: string, typeId: string, resource: unknown) => Promise<unknown> };
  const create = states.create.bind(states);
  states.create = async (context, draft) => {
    const created = await create(context, draft);
    if (draft.transitions !== undefined) return created;
    const { transitions: _none, ...kept } = created;
    await storage.add(context.projectKey, 'state', kept);
    return kept;
  };
}

export function addOrderActions(mock: CommercetoolsMock, projectKey: string): void {
  const project = mock.project(projectKey);
  const storage = project.config.storage as unknown as Storage;
  const orders = project.getRepository('order') as unknown as { actions: Record<string, unknown>; processUpdateActions: never };
  const payments = project.getRepository('payment') as unknown as { processUpdateActions: never };
  const handler = orders.actions;
  try {
    // Setting a custom field on a resource without a custom type throws the emulator's CommercetoolsError.
    (handler._setCustomFieldValues as (resource: object, field: object) => void).call(handler, {}, { name: 'probe', value: null });
  } catch (error) {
    errorClass = (error as Error).constructor as ErrorClass;
  }
  handler.transitionLineItemState = async (
    context: RepositoryContext,
    order: Order,
    action: { lineItemId?: string; lineItemKey?: string; quantity: number; fromState: StateResourceIdentifier; toState: StateResourceIdentifier },
  ) => {
    const item = await findItem(order.lineItems as unknown as LineLike[], action.lineItemId, action.lineItemKey, 'LineItem');
    await transition(storage, context, item, 'LineItem', action);
  };
  handler.transitionCustomLineItemState = async (
    context: RepositoryContext,
    order: Order,
    action: { customLineItemId?: string; customLineItemKey?: string; quantity: number; fromState: StateResourceIdentifier; toState: StateResourceIdentifier },
  ) => {
    const item = await findItem(order.customLineItems as unknown as LineLike[], action.customLineItemId, action.customLineItemKey, 'CustomLineItem');
    await transition(storage, context, item, 'CustomLineItem', action);
  };
  // The emulator's transitionState sets any State; commercetools refuses one the current State has no transition
  // to (when it sets `transitions`) unless `force` is true (OrderTransitionStateAction in the SDK's types).
  const transitionState = (handler.transitionState as (context: RepositoryContext, order: Order, action: { state: StateResourceIdentifier; force?: boolean }) => Promise<void>).bind(handler);
  handler.transitionState = async (context: RepositoryContext, order: Order, action: { state: StateResourceIdentifier; force?: boolean }) => {
    if (!action.force && order.state) {
      const current = (await storage.getByResourceIdentifier(context.projectKey, { typeId: 'state', id: order.state.id }).catch(() => undefined)) as State | undefined;
      const target = (await storage.getByResourceIdentifier(context.projectKey, { ...action.state, typeId: 'state' }).catch(() => undefined)) as State | undefined;
      if (current?.transitions !== undefined && target && !current.transitions.some((reference) => reference.id === target.id)) {
        throw await commercetoolsError(400, { code: 'InvalidOperation', message: `Transition from state '${current.key ?? current.id}' to state '${target.key ?? target.id}' is not allowed.` });
      }
    }
    await transitionState(context, order, action);
  };
  keepTransitionsUnset(project);
  serialiseUpdates(orders);
  serialiseUpdates(payments);
}
