// Agent actions on commercetools orders — refunds, item cancellations, order-state changes — with their
// safeguards (rules.ts), role scopes and limits, idempotency keys, optimistic concurrency and the audit log.
//
// A call: the caller's role must allow the action; its Idempotency-Key is reserved (requests.ts) or its earlier
// answer given again; then, up to actions.maxAttempts times: read the order (and its payments and the project's
// states) fresh through the actions client, check If-Match, plan with the safeguards, and — a refund above the
// role's limit becomes a pending approval instead — write with the version read. A 409 (someone changed the order or
// payment meanwhile) starts over with a fresh read, so every write is checked against what it is applied to. The
// outcome is committed with its audit entries; what is about to be written is committed before writing, so a retry
// after a crash between the write and that commit finds the write (the new Refund transaction, the cancelled
// quantities, the new state) instead of writing twice.
//
// A call holds its key under a lease (actions.leaseSeconds), renewed while it runs; every write to its row is fenced
// by it (requests.ts), and it checks it still holds the row before each commercetools write. A call whose process
// died leaves its row in progress: once the lease has run out, a retry with the same key finishes it (and may do the
// call afresh: the caller asks again), and so does the sweeper `ctbridge start` runs (sweeper.ts), which only looks:
// the planned writes found → done, with the answer the call would have given; none found → the key is given back
// (an approval goes back to pending); the items cancelled but the refund missing → the refund is made, as a retry
// would. Each resolution is audited.
import { createHash, randomUUID } from 'node:crypto';
import type { Order, Payment, State } from '@commercetools/platform-sdk';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { CommercetoolsClient } from '../commercetools/client.ts';
import { quotePredicateString, toDeliveryErrorFromCommercetools } from '../commercetools/client.ts';
import { redactText } from '../observability/redact.ts';
import type { ApiCaller } from '../server/api-clients.ts';
import { insertAudit, type AuditEntry } from '../store/audit-log.ts';
import type { Database } from '../store/schema.ts';
import type { ActionKind, ActionsConfig, OrderStateName, RoleActions } from './config.ts';
import { abandoned, findById, reserve, takeOver, type ActionRequest, type Outcome, type RequestLease } from './requests.ts';
import {
  cancelApplied,
  indexStates,
  moneyView,
  orderCurrency,
  planCancel,
  planRefund,
  planStateChange,
  refundAmount,
  refundApplied,
  refundedOnOrder,
  stateApplied,
  toMinorUnits,
  type CancelPlan,
  type RefundPart,
  type RefundPlan,
  type Refusal,
  type StateIndex,
  type StatePlan,
} from './rules.ts';

export interface RefundBody {
  amount?: { currencyCode: string; amount: string } | undefined;
  lineItems?: { lineItemId: string; quantity: number }[] | undefined;
  shipping?: boolean | undefined;
  paymentId?: string | undefined;
  reason: string;
}
export interface CancelBody {
  lineItems: { lineItemId: string; quantity: number }[];
  refund?: boolean | undefined;
  shipping?: boolean | undefined;
  reason: string;
}
export interface StateBody {
  orderState?: OrderStateName | undefined;
  state?: string | undefined;
  reason: string;
}
export type ActionBody = RefundBody | CancelBody | StateBody;

export interface ActionCall {
  kind: ActionKind;
  orderId: string;
  body: ActionBody;
  caller: ApiCaller;
  idempotencyKey: string;
  ifMatch?: number | undefined;
  dryRun: boolean;
  correlationId: string;
}

/** What the HTTP layer answers: a body, or a problem (rule refusals carry the rule). */
export interface Answer {
  status: number;
  body: unknown;
  problem?: boolean;
  headers?: Record<string, string>;
}

export interface ActionsServiceOptions {
  db: Kysely<Database>;
  /** The actions client (its own credentials and scopes), never the read client. */
  commercetools: Pick<CommercetoolsClient, 'api'>;
  config: ActionsConfig;
  logger: Logger;
  now?: () => number;
  /** Fault injection for tests: called after each commercetools write, before its outcome is committed. */
  afterWrite?: (write: { resource: 'order' | 'payment'; id: string }) => void | Promise<void>;
  /** Fault injection for tests: called before each commercetools write, after its intent is committed. */
  beforeWrite?: (write: { resource: 'order' | 'payment'; id: string }) => void | Promise<void>;
}

export const ACTION_PROBLEM_PREFIX = 'urn:ctbridge:problem:action:';

const TITLES: Record<number, string> = { 400: 'Bad request', 401: 'Authentication failed', 403: 'Not allowed', 404: 'Not found', 409: 'Refused by a safeguard', 412: 'Order version moved', 422: 'Refused', 502: 'commercetools failed', 503: 'commercetools unavailable' };

export function problem(refusal: Refusal, extra: Record<string, unknown> = {}): Answer {
  return {
    status: refusal.status,
    problem: true,
    body: { type: `${ACTION_PROBLEM_PREFIX}${refusal.rule}`, title: TITLES[refusal.status] ?? 'Refused', status: refusal.status, detail: refusal.detail, rule: refusal.rule, ...extra },
  };
}

/** The same key must come with the same call: kind, order, body, If-Match (canonical JSON, keys sorted). */
export function fingerprint(call: Pick<ActionCall, 'kind' | 'orderId' | 'body' | 'ifMatch'>): string {
  const canonical = (value: unknown): unknown =>
    Array.isArray(value) ? value.map(canonical) : value !== null && typeof value === 'object' ? Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, canonical(v)])) : value;
  return createHash('sha256').update(JSON.stringify(canonical({ kind: call.kind, orderId: call.orderId, body: call.body, ifMatch: call.ifMatch ?? null }))).digest('hex');
}

class Conflict extends Error {}

/** The call's row was taken over (its lease ran out while it ran): it writes nothing more. */
class LeaseLost extends Error {}

interface Fresh {
  order: Order;
  payments: Payment[];
  states: StateIndex;
}

/** What a call plans to write, saved before writing (a retry after a crash checks for these effects). */
interface Intent {
  orderVersionBefore: number;
  cancel?: Pick<CancelPlan, 'cancelled' | 'cancelledBefore' | 'cancelledStateId'>;
  state?: Pick<StatePlan, 'orderState' | 'stateId'>;
  refund?: Pick<RefundPlan, 'centAmount' | 'currencyCode' | 'fractionDigits' | 'payment' | 'parts'>;
  orderDone?: boolean;
}

/** An approval's approver, recorded when it takes the row over (so whoever finishes it after a crash knows). */
interface Approver {
  client: string;
  role: string;
}

/** The row's intent: the approver of an approval under way, and what the call planned once it has. */
type StoredIntent = Partial<Intent> & { approval?: Approver };

/** The planned writes in a row's intent, if the call got as far as planning them. */
function plannedOf(stored: StoredIntent | null): Intent | null {
  return stored && typeof stored.orderVersionBefore === 'number' ? (stored as Intent) : null;
}

/** Who finishes a call that died: a retry with its key (or an approver's), or the sweeper. */
type RecoveredBy = 'retry' | 'sweeper';

interface Planned {
  orderWrite?: { version: number; actions: CancelPlan['actions'] };
  cancel?: CancelPlan;
  state?: StatePlan;
  refund?: RefundPlan;
  checks: string[];
}

type Planning = { ok: true; planned: Planned } | { ok: false; refusal: Refusal };

function limitAllows(grants: RoleActions | undefined, currency: string, fractionDigits: number, refundedBefore: number, centAmount: number): boolean {
  const limits = grants?.refundLimits;
  if (limits === undefined) return true;
  const limit = limits[currency];
  if (limit === undefined) return false;
  return refundedBefore + centAmount <= (toMinorUnits(limit, fractionDigits) ?? Number.POSITIVE_INFINITY);
}

export class ActionsService {
  readonly #db: Kysely<Database>;
  readonly #ct: Pick<CommercetoolsClient, 'api'>;
  readonly #config: ActionsConfig;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #afterWrite: ActionsServiceOptions['afterWrite'];
  readonly #beforeWrite: ActionsServiceOptions['beforeWrite'];
  readonly #renewals = new Set<NodeJS.Timeout>();

  constructor(options: ActionsServiceOptions) {
    this.#db = options.db;
    this.#ct = options.commercetools;
    this.#config = options.config;
    this.#logger = options.logger.child({ component: 'actions' });
    this.#now = options.now ?? Date.now;
    this.#afterWrite = options.afterWrite;
    this.#beforeWrite = options.beforeWrite;
  }

  get #leaseMs(): number {
    return this.#config.leaseSeconds * 1000;
  }

  /** Stops renewing the leases of calls in flight (the process is stopping; their rows are taken over later). */
  close(): void {
    for (const timer of this.#renewals) clearInterval(timer);
    this.#renewals.clear();
  }

  // -------------------------------------------------------------------------------------------------------------
  // Calls

  async perform(call: ActionCall): Promise<Answer> {
    const grants = call.caller.grants.actions;
    if (!grants?.allow.includes(call.kind)) {
      const answer = problem({ rule: 'role-not-allowed', status: 403, detail: `the role "${call.caller.role}" may not take the action ${call.kind}` });
      await this.#audit([this.#entry(call, 'refused', { rule: 'role-not-allowed' })]);
      return answer;
    }
    if (call.dryRun) return this.#dryRun(call);

    const print = fingerprint(call);
    const id = randomUUID();
    const now = this.#now();
    const reserved = await reserve(
      this.#db,
      { id, client: call.caller.client, idempotencyKey: call.idempotencyKey, fingerprint: print, kind: call.kind, orderId: call.orderId, role: call.caller.role, request: { body: { ...call.body, reason: redactText(call.body.reason) }, ifMatch: call.ifMatch ?? null }, correlationId: call.correlationId },
      now + this.#leaseMs,
      now,
    );
    if (reserved.created) return this.#run(call, reserved.lease, null);
    const existing = reserved.existing;
    if (existing.fingerprint !== print) {
      await this.#audit([this.#entry(call, 'refused', { rule: 'idempotency-key-reused' })]);
      return problem({ rule: 'idempotency-key-reused', status: 422, detail: 'this Idempotency-Key was used with another request; use a new key for a new request' });
    }
    // An answer already given (202: a pending refund, now perhaps being approved) is the one a retry gets.
    if (existing.status !== 'in-progress' || existing.answer !== null) return this.#replay(existing);
    if ((existing.leaseUntil ?? 0) > now) {
      return { ...problem({ rule: 'idempotency-in-progress', status: 409, detail: 'a call with this Idempotency-Key is in progress; try again shortly' }), headers: { 'retry-after': '1' } };
    }
    // The call that held the key died: find out what it did, then finish it.
    const lease = await takeOver(this.#db, existing, now + this.#leaseMs, now);
    if (!lease) {
      return { ...problem({ rule: 'idempotency-in-progress', status: 409, detail: 'a call with this Idempotency-Key is in progress; try again shortly' }), headers: { 'retry-after': '1' } };
    }
    return this.#run(call, lease, plannedOf(existing.intent));
  }

  #replay(existing: ActionRequest): Answer {
    const status = existing.httpStatus ?? 200;
    const body = existing.answer;
    return { status, body, problem: status >= 400, headers: { 'idempotent-replayed': 'true' } };
  }

  async #dryRun(call: ActionCall): Promise<Answer> {
    let fresh: Fresh;
    try {
      fresh = await this.#read(call.orderId, call.kind);
    } catch (error) {
      return this.#readFailure(call, error);
    }
    const planning = this.#plan(call, fresh);
    if (!planning.ok) {
      await this.#audit([this.#entry(call, 'refused', { rule: planning.refusal.rule, dryRun: true, orderVersionBefore: fresh.order.version })]);
      return problem(planning.refusal);
    }
    const { planned } = planning;
    const needsApproval = planned.refund ? !this.#withinLimit(call.caller.grants.actions, fresh, planned.refund.centAmount) : false;
    await this.#audit([this.#entry(call, 'dry-run', { orderVersionBefore: fresh.order.version, ...this.#amountDetail(planned.refund) }, this.#actionNames(planned))]);
    return {
      status: 200,
      body: {
        dryRun: true,
        kind: call.kind,
        orderId: call.orderId,
        orderVersion: fresh.order.version,
        checks: planned.checks,
        needsApproval,
        ...(planned.refund && { refund: this.#refundView(planned.refund) }),
        writes: this.#writes(planned),
      },
    };
  }

  #withinLimit(grants: RoleActions | undefined, fresh: Fresh, centAmount: number): boolean {
    const { currencyCode, fractionDigits } = orderCurrency(fresh.order);
    return limitAllows(grants, currencyCode, fractionDigits, refundedOnOrder(fresh.order, fresh.payments), centAmount);
  }

  /**
   * Runs a reserved call to its outcome. `intent`: what a call that died had planned; its writes are looked for
   * first. `approval`: the call is a pending refund being approved (the approver's limit applies, not the
   * requester's, and its first answer — 202 — stays the one a retry of the original call gets).
   */
  async #run(call: ActionCall, lease: RequestLease, intent: Intent | null, approval?: { approver: ApiCaller }): Promise<Answer> {
    let wrote = false;
    let versionBefore: number | undefined;
    const grants = approval ? approval.approver.grants.actions : call.caller.grants.actions;
    const stopRenewing = this.#keepLease(lease);
    try {
      let recovered = intent;
      for (let attempt = 1; ; attempt += 1) {
        const fresh = await this.#read(call.orderId, call.kind);
        versionBefore ??= fresh.order.version;
        if (recovered) {
          // A call that died may have written: if finishing it fails, the key stays held, never given back.
          wrote = true;
          const answer = await this.#recover(call, lease, recovered, fresh, approval, 'retry');
          if (answer) return answer;
          recovered = null;
          wrote = false;
        }
        if (call.ifMatch !== undefined && fresh.order.version !== call.ifMatch && !approval) {
          return await this.#refused(call, lease, { rule: 'order-version-moved', status: 412, detail: `the order is at version ${fresh.order.version}, not ${call.ifMatch} (If-Match)` }, fresh.order.version, approval);
        }
        const planning = this.#plan(call, fresh);
        if (!planning.ok) return await this.#refused(call, lease, planning.refusal, fresh.order.version, approval);
        const { planned } = planning;
        if (planned.refund && !this.#withinLimit(grants, fresh, planned.refund.centAmount)) {
          if (approval) {
            const refusal: Refusal = { rule: 'approval-over-limit', status: 403, detail: `the refund is above the approver's role "${approval.approver.role}" limit` };
            if (!(await lease.backToPending([this.#entry(call, 'refused', { rule: refusal.rule, approver: approval.approver.client, approverRole: approval.approver.role, ...this.#amountDetail(planned.refund) })], this.#now()))) throw new LeaseLost();
            return problem(refusal);
          }
          return await this.#pending(call, lease, planned, fresh);
        }
        const next: StoredIntent & Intent = {
          ...(approval && { approval: { client: approval.approver.client, role: approval.approver.role } }),
          orderVersionBefore: fresh.order.version,
          ...(planned.cancel && { cancel: { cancelled: planned.cancel.cancelled, cancelledBefore: planned.cancel.cancelledBefore, cancelledStateId: planned.cancel.cancelledStateId } }),
          ...(planned.state && { state: { orderState: planned.state.orderState, stateId: planned.state.stateId } }),
          ...(planned.refund && { refund: { centAmount: planned.refund.centAmount, currencyCode: planned.refund.currencyCode, fractionDigits: planned.refund.fractionDigits, payment: planned.refund.payment, parts: planned.refund.parts } }),
        };
        await this.#saveIntent(lease, next);
        let order = fresh.order;
        try {
          if (planned.orderWrite) {
            wrote = true;
            order = await this.#write('order', order.id, planned.orderWrite.version, planned.orderWrite.actions);
            next.orderDone = true;
          }
          let payment: Payment | undefined;
          if (planned.refund) {
            if (next.orderDone) await this.#saveIntent(lease, next);
            wrote = true;
            payment = await this.#writeRefund(call, lease, planned.refund);
          }
          return await this.#done(call, lease, planned, versionBefore, order, payment, approval);
        } catch (error) {
          if (!(error instanceof Conflict)) throw error;
          if (next.orderDone) {
            // The order write went through; only the refund met a conflict: #writeRefund retried it already.
            const refusal = (error as { refusal?: Refusal }).refusal;
            if (refusal) refusal.detail = `the items were cancelled (order version ${order.version}), but the refund was refused: ${refusal.detail}`;
            throw error;
          }
          if (attempt >= this.#config.maxAttempts) {
            return await this.#refused(call, lease, { rule: 'concurrent-modification', status: 409, detail: `the order or its payment kept changing over ${attempt} attempts; try again` }, fresh.order.version, approval);
          }
          wrote = false;
        }
      }
    } catch (error) {
      return await this.#failure(call, lease, error, wrote, versionBefore, approval);
    } finally {
      stopRenewing();
    }
  }

  /** Renews the call's lease every third of it while the call runs; stops when the row was taken over. */
  #keepLease(lease: RequestLease): () => void {
    const timer = setInterval(() => {
      lease.renew(this.#now() + this.#leaseMs).then(
        (held) => {
          if (!held) stop();
        },
        (error: unknown) => this.#logger.warn({ actionId: lease.id, err: error }, 'renewing the lease of an action failed; tried again shortly'),
      );
    }, Math.max(1000, Math.floor(this.#leaseMs / 3)));
    timer.unref();
    this.#renewals.add(timer);
    const stop = () => {
      clearInterval(timer);
      this.#renewals.delete(timer);
    };
    return stop;
  }

  /** Commits what is about to be written; a call that lost its row writes nothing. */
  async #saveIntent(lease: RequestLease, intent: StoredIntent): Promise<void> {
    if (!(await lease.saveIntent(intent, this.#now()))) throw new LeaseLost();
  }

  async #commit(lease: RequestLease, outcome: Outcome, audit: AuditEntry[]): Promise<void> {
    if (!(await lease.finish(outcome, audit, this.#now()))) throw new LeaseLost();
  }

  /**
   * The refund write, re-checked against a fresh payment on each conflict (the amount stays what was planned).
   * `planned`: finishing a call that died, whose own refund may be what the conflict was (a write it had in flight
   * that landed late): found, it is the refund, not a reason to add another.
   */
  async #writeRefund(call: ActionCall, lease: RequestLease, plan: RefundPlan, planned?: Intent['refund']): Promise<Payment> {
    let current = plan;
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.#write('payment', current.payment.id, current.payment.version, current.actions);
      } catch (error) {
        if (!(error instanceof Conflict) || attempt >= this.#config.maxAttempts) throw error;
        if (!(await lease.renew(this.#now() + this.#leaseMs))) throw new LeaseLost();
        const reread = await this.#read(call.orderId, 'refund');
        const landed = planned ? reread.payments.find((p) => p.id === planned.payment.id && refundApplied(p, planned)) : undefined;
        if (landed) return landed;
        const again = planRefund(reread.order, reread.payments, { centAmount: plan.centAmount, parts: plan.parts }, { paymentId: (call.body as RefundBody).paymentId, transactionState: this.#config.refundTransactionState, now: this.#now() });
        if (!again.ok) throw Object.assign(new Conflict(again.refusal.detail), { refusal: again.refusal });
        current = again.plan;
      }
    }
  }

  /** A call that died after planning: which of its writes happened? Answers when it can finish the call. */
  async #recover(call: ActionCall, lease: RequestLease, intent: Intent, fresh: Fresh, approval: { approver: ApiCaller } | undefined, by: RecoveredBy): Promise<Answer | undefined> {
    const orderDone = (intent.cancel ? cancelApplied(fresh.order, intent.cancel) : true) && (intent.state ? stateApplied(fresh.order, intent.state) : true);
    const payment = intent.refund ? fresh.payments.find((p) => p.id === intent.refund!.payment.id) : undefined;
    const refundDone = intent.refund ? payment !== undefined && refundApplied(payment, intent.refund) : true;
    const hasOrderWrite = Boolean(intent.cancel || intent.state);
    this.#logger.info({ actionId: lease.id, by, orderDone: hasOrderWrite ? orderDone : null, refundDone: intent.refund ? refundDone : null }, 'a call that died is taken over: looking for its writes');
    if ((!hasOrderWrite || orderDone) && refundDone && (hasOrderWrite || intent.refund)) {
      const planned: Planned = { checks: [] };
      if (intent.cancel) planned.cancel = { order: { id: fresh.order.id, version: intent.orderVersionBefore }, cancelledStateId: intent.cancel.cancelledStateId, cancelled: intent.cancel.cancelled, cancelledBefore: intent.cancel.cancelledBefore, actions: [] };
      if (intent.state) planned.state = { order: { id: fresh.order.id, version: intent.orderVersionBefore }, ...intent.state, actions: [] };
      if (intent.refund) planned.refund = { ...intent.refund, actions: [] };
      return this.#done(call, lease, planned, intent.orderVersionBefore, fresh.order, payment, approval, { recoveredBy: by });
    }
    if (hasOrderWrite && orderDone && intent.refund && !refundDone) {
      // The order changed, the refund did not happen: do the refund alone.
      const again = planRefund(fresh.order, fresh.payments, { centAmount: intent.refund.centAmount, parts: intent.refund.parts }, { paymentId: undefined, transactionState: this.#config.refundTransactionState, now: this.#now() });
      if (!again.ok) return this.#refused(call, lease, again.refusal, fresh.order.version, approval);
      await this.#saveIntent(lease, { ...intent, orderDone: true, refund: { ...intent.refund, payment: again.plan.payment } });
      const written = await this.#writeRefund(call, lease, again.plan, intent.refund);
      const planned: Planned = { checks: [], refund: again.plan };
      if (intent.cancel) planned.cancel = { order: { id: fresh.order.id, version: intent.orderVersionBefore }, ...intent.cancel, actions: [] };
      return this.#done(call, lease, planned, intent.orderVersionBefore, fresh.order, written, approval, { recoveredBy: by });
    }
    return undefined;
  }

  /**
   * Finishes the calls whose process died (in progress, lease run out) that no retry came for. It takes each row's
   * lease first, so of several processes one finishes a row; it writes to commercetools only to finish a refund
   * whose cancellation went through. Returns how each row ended.
   */
  async sweep(limit = 50): Promise<{ id: string; outcome: 'done' | 'released' | 'pending' | 'refused' | 'left' }[]> {
    const outcomes: { id: string; outcome: 'done' | 'released' | 'pending' | 'refused' | 'left' }[] = [];
    for (const record of await abandoned(this.#db, this.#now(), limit)) {
      const now = this.#now();
      const lease = await takeOver(this.#db, record, now + this.#leaseMs, now);
      if (!lease) continue;
      outcomes.push({ id: record.id, outcome: await this.#settle(record, lease, 'sweeper', `sweep:${record.id}`) });
    }
    return outcomes;
  }

  /**
   * Settles a call that died, holding its row's lease: its planned writes found → done; none (or none planned) →
   * the key given back, or an approval back to pending; a failure reading commercetools → left in progress under
   * the lease just taken, for the next try.
   */
  async #settle(record: ActionRequest, lease: RequestLease, by: RecoveredBy, correlationId: string): Promise<'done' | 'released' | 'pending' | 'refused' | 'left'> {
    const stored = record.intent as StoredIntent | null;
    const approver = stored?.approval;
    const call = this.#callOf(record, correlationId, {});
    const approval = approver ? { approver: { client: approver.client, role: approver.role, grants: {} } } : undefined;
    const intent = plannedOf(stored);
    const stopRenewing = this.#keepLease(lease);
    try {
      if (intent) {
        const fresh = await this.#read(record.orderId, call.kind);
        const answer = await this.#recover(call, lease, intent, fresh, approval, by);
        if (answer) return answer.status === 200 ? 'done' : 'refused';
      }
      const entry = this.#entry(call, 'failed', {
        abandoned: true,
        recoveredBy: by,
        ...(approver && { approver: approver.client, approverRole: approver.role }),
        detail: intent ? 'the call died; none of its writes reached commercetools' : 'the call died before planning any write',
      });
      // Nothing was written: as after a failure before writing, the key is free for a retry (which starts afresh).
      if (approver) return (await lease.backToPending([entry], this.#now())) ? 'pending' : 'left';
      return (await lease.release([entry])) ? 'released' : 'left';
    } catch (error) {
      // The order is gone, or finishing the refund was refused (the payment changed since): refused, as a retry would be.
      const refusal = error instanceof NotFound ? { rule: 'order-not-found', status: 404, detail: `commercetools has no order ${record.orderId}` } : (error as { refusal?: Refusal }).refusal;
      if (refusal) return this.#refused(call, lease, refusal, intent?.orderVersionBefore ?? 0, approval).then(() => 'refused' as const, () => 'left' as const);
      const message = error instanceof Error ? error.message : String(error);
      this.#logger.warn({ actionId: record.id, by, err: { message: redactText(message) } }, 'a call that died could not be settled yet; tried again once its lease runs out');
      return 'left';
    } finally {
      stopRenewing();
    }
  }

  /** The call a row records, as its requester made it. */
  #callOf(record: ActionRequest, correlationId: string, grants: ApiCaller['grants']): ActionCall {
    return {
      kind: record.kind as ActionKind,
      orderId: record.orderId,
      body: record.request.body as ActionBody,
      caller: { client: record.client, role: record.role, grants },
      idempotencyKey: record.idempotencyKey,
      ifMatch: (record.request.ifMatch as number | null | undefined) ?? undefined,
      dryRun: false,
      correlationId,
    };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Approvals

  async view(id: string, caller: ApiCaller): Promise<Answer> {
    const record = await findById(this.#db, id);
    // Someone else's action is as unknown to a caller who may not approve as one that does not exist.
    if (!record || (record.client !== caller.client && !caller.grants.actions?.approve)) return problem({ rule: 'action-not-found', status: 404, detail: `no action ${id}` });
    return { status: 200, body: this.#recordView(record) };
  }

  async decide(id: string, caller: ApiCaller, decision: 'approve' | 'reject', correlationId: string): Promise<Answer> {
    let record = await findById(this.#db, id);
    if (!record || (record.client !== caller.client && !caller.grants.actions?.approve)) return problem({ rule: 'action-not-found', status: 404, detail: `no action ${id}` });
    const call = this.#callOf(record, correlationId, caller.grants);
    const decider = { approver: caller.client, approverRole: caller.role, decision };
    if (!caller.grants.actions?.approve) {
      await this.#audit([this.#entry(call, 'refused', { rule: 'approver-not-allowed', ...decider })]);
      return problem({ rule: 'approver-not-allowed', status: 403, detail: `the role "${caller.role}" may not approve or reject actions` });
    }
    if (record.client === caller.client) {
      await this.#audit([this.#entry(call, 'refused', { rule: 'own-request', ...decider })]);
      return problem({ rule: 'own-request', status: 403, detail: 'a request is approved or rejected by someone other than its requester' });
    }
    const now = this.#now();
    if (record.status === 'in-progress' && (record.intent as StoredIntent | null)?.approval && (record.leaseUntil ?? 0) < now) {
      // A decision whose process died: settle it first (its refund found → done; nothing written → pending again).
      const settling = await takeOver(this.#db, record, now + this.#leaseMs, now);
      if (settling) await this.#settle(record, settling, 'retry', correlationId);
      record = (await findById(this.#db, id)) ?? record;
      if (record.status === 'done' && record.decidedBy === caller.client) return this.view(id, caller);
    }
    if (record.status !== 'pending') return problem({ rule: 'not-pending', status: 409, detail: `the action is ${record.status}, not pending` }, { action: this.#recordView(record) });
    const lease = await takeOver(this.#db, record, this.#now() + this.#leaseMs, this.#now(), { approval: { client: caller.client, role: caller.role } satisfies Approver });
    if (!lease) return problem({ rule: 'not-pending', status: 409, detail: 'the action was decided meanwhile' });
    if (decision === 'reject') {
      if (!(await lease.finish({ status: 'rejected', result: { rejectedBy: caller.client }, decidedBy: caller.client }, [this.#entry(call, 'rejected', decider)], this.#now()))) {
        return problem({ rule: 'not-pending', status: 409, detail: 'the action was decided meanwhile' });
      }
      return this.view(id, caller);
    }
    const answer = await this.#run(call, lease, null, { approver: caller });
    if (answer.status >= 400) return answer;
    return this.view(id, caller);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Planning

  #plan(call: ActionCall, fresh: Fresh): Planning {
    const now = this.#now();
    if (call.kind === 'refund') {
      const body = call.body as RefundBody;
      const amount = refundAmount(fresh.order, body);
      if (!amount.ok) return amount;
      const refund = planRefund(fresh.order, fresh.payments, amount, { paymentId: body.paymentId, transactionState: this.#config.refundTransactionState, now });
      if (!refund.ok) return refund;
      return { ok: true, planned: { refund: refund.plan, checks: ['currency', 'amount-precision', 'successful-charge', 'refund-within-charge'] } };
    }
    if (call.kind === 'cancel-items') {
      const body = call.body as CancelBody;
      const cancel = planCancel(fresh.order, fresh.states, body.lineItems, this.#config);
      if (!cancel.ok) return cancel;
      const planned: Planned = { cancel: cancel.plan, orderWrite: { version: fresh.order.version, actions: cancel.plan.actions }, checks: ['line-items', 'not-shipped', 'not-cancelled', 'state-transitions'] };
      if (body.refund) {
        const amount = refundAmount(fresh.order, { lineItems: body.lineItems, shipping: body.shipping });
        if (!amount.ok) return amount;
        const refund = planRefund(fresh.order, fresh.payments, amount, { transactionState: this.#config.refundTransactionState, now });
        if (!refund.ok) return refund;
        planned.refund = refund.plan;
        planned.checks.push('successful-charge', 'refund-within-charge');
      }
      return { ok: true, planned };
    }
    const body = call.body as StateBody;
    const state = planStateChange(fresh.order, fresh.states, body, this.#config);
    if (!state.ok) return state;
    return { ok: true, planned: { state: state.plan, orderWrite: { version: fresh.order.version, actions: state.plan.actions }, checks: ['not-final', 'transition-allowed', 'payment-settled-for-complete'] } };
  }

  #writes(planned: Planned): { resource: 'order' | 'payment'; id: string; version: number; actions: unknown[] }[] {
    const writes: { resource: 'order' | 'payment'; id: string; version: number; actions: unknown[] }[] = [];
    const orderPlan = planned.cancel ?? planned.state;
    if (planned.orderWrite && orderPlan) writes.push({ resource: 'order', id: orderPlan.order.id, version: planned.orderWrite.version, actions: planned.orderWrite.actions });
    if (planned.refund) writes.push({ resource: 'payment', id: planned.refund.payment.id, version: planned.refund.payment.version, actions: planned.refund.actions });
    return writes;
  }

  #actionNames(planned: Planned): string[] {
    return [...new Set(this.#writes(planned).flatMap((write) => write.actions.map((action) => `${write.resource}.${(action as { action: string }).action}`)))];
  }

  // -------------------------------------------------------------------------------------------------------------
  // commercetools

  async #read(orderId: string, kind: ActionKind): Promise<Fresh> {
    const api = this.#ct.api;
    let order: Order;
    try {
      order = (await api.orders().withId({ ID: orderId }).get().execute()).body;
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404 || (error as { body?: { statusCode?: number } }).body?.statusCode === 404) throw new NotFound(orderId);
      throw toDeliveryErrorFromCommercetools(error, 'reading the order');
    }
    const paymentIds = (order.paymentInfo?.payments ?? []).map((reference) => reference.id);
    let payments: Payment[] = [];
    if (paymentIds.length > 0 && kind !== 'change-state') {
      try {
        payments = (await api.payments().get({ queryArgs: { where: `id in (${paymentIds.map(quotePredicateString).join(', ')})`, limit: paymentIds.length } }).execute()).body.results;
      } catch (error) {
        throw toDeliveryErrorFromCommercetools(error, "reading the order's payments");
      }
    }
    let states: State[] = [];
    if (kind !== 'refund') {
      try {
        states = (await api.states().get({ queryArgs: { where: 'type in ("LineItemState", "OrderState")', limit: 500 } }).execute()).body.results;
      } catch (error) {
        throw toDeliveryErrorFromCommercetools(error, 'reading the states');
      }
    }
    return { order, payments, states: indexStates(states) };
  }

  async #write<T extends 'order' | 'payment'>(resource: T, id: string, version: number, actions: unknown[]): Promise<T extends 'order' ? Order : Payment> {
    const api = this.#ct.api;
    let result: Order | Payment;
    await this.#beforeWrite?.({ resource, id });
    try {
      const body = { version, actions } as never;
      result = resource === 'order' ? (await api.orders().withId({ ID: id }).post({ body }).execute()).body : (await api.payments().withId({ ID: id }).post({ body }).execute()).body;
    } catch (error) {
      const status = (error as { statusCode?: number }).statusCode ?? (error as { body?: { statusCode?: number } }).body?.statusCode;
      if (status === 409) throw new Conflict(`${resource} ${id} changed meanwhile`);
      throw toDeliveryErrorFromCommercetools(error, `updating the ${resource}`);
    }
    await this.#afterWrite?.({ resource, id });
    return result as T extends 'order' ? Order : Payment;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Outcomes

  async #done(call: ActionCall, lease: RequestLease, planned: Planned, versionBefore: number, order: Order, payment: Payment | undefined, approval?: { approver: ApiCaller }, recovery?: { recoveredBy: RecoveredBy }): Promise<Answer> {
    const id = lease.id;
    const transaction = planned.refund && payment ? payment.transactions.find((t) => !planned.refund!.payment.transactionIdsBefore.includes(t.id) && t.type === 'Refund' && t.amount.centAmount === planned.refund!.centAmount) : undefined;
    const body = {
      id,
      kind: call.kind,
      status: 'done',
      orderId: call.orderId,
      orderVersion: order.version,
      ...(planned.cancel && { cancelled: planned.cancel.cancelled }),
      ...(planned.state && { orderState: order.orderState, ...(order.state && { state: order.state.id }) }),
      ...(planned.refund && { refund: { ...this.#refundView(planned.refund), paymentId: planned.refund.payment.id, ...(payment && { paymentVersion: payment.version }), ...(transaction && { transactionId: transaction.id, transactionState: transaction.state }) } }),
    };
    const detail = { orderVersionBefore: versionBefore, orderVersionAfter: order.version, ...this.#amountDetail(planned.refund), ...(approval && { approver: approval.approver.client, approverRole: approval.approver.role }), ...recovery };
    const audit = [this.#entry(call, approval ? 'approved' : 'done', detail, this.#actionNames(planned).length > 0 ? this.#actionNames(planned) : this.#intentNames(planned), order.version)];
    await this.#commit(lease, { status: 'done', ...(!approval && { answer: { httpStatus: 200, body } }), result: body, ...(approval && { decidedBy: approval.approver.client }) }, audit);
    return { status: 200, body };
  }

  #intentNames(planned: Planned): string[] {
    return [...(planned.cancel ? ['order.transitionLineItemState'] : []), ...(planned.state ? ['order.changeOrderState'] : []), ...(planned.refund ? ['payment.addTransaction'] : [])];
  }

  async #pending(call: ActionCall, lease: RequestLease, planned: Planned, fresh: Fresh): Promise<Answer> {
    const id = lease.id;
    const body = {
      id,
      kind: call.kind,
      status: 'pending',
      orderId: call.orderId,
      orderVersion: fresh.order.version,
      refund: this.#refundView(planned.refund!),
      detail: `the refund is above the limit of the role "${call.caller.role}": it waits for approval (POST /v1/actions/${id}/approve by a role that may approve)`,
    };
    await this.#commit(lease, { status: 'pending', answer: { httpStatus: 202, body }, result: body }, [this.#entry(call, 'pending', { orderVersionBefore: fresh.order.version, ...this.#amountDetail(planned.refund) }, this.#actionNames(planned), fresh.order.version)]);
    return { status: 202, body, headers: { location: `/v1/actions/${id}` } };
  }

  async #refused(call: ActionCall, lease: RequestLease, refusal: Refusal, orderVersion: number, approval?: { approver: ApiCaller }): Promise<Answer> {
    const answer = problem(refusal);
    const audit = [this.#entry(call, 'refused', { rule: refusal.rule, orderVersionBefore: orderVersion, ...(approval && { approver: approval.approver.client, approverRole: approval.approver.role }) }, null, orderVersion)];
    await this.#commit(lease, { status: 'refused', ...(!approval && { answer: { httpStatus: answer.status, body: answer.body } }), result: answer.body, ...(approval && { decidedBy: approval.approver.client }) }, audit);
    return answer;
  }

  async #failure(call: ActionCall, lease: RequestLease, error: unknown, wrote: boolean, versionBefore: number | undefined, approval?: { approver: ApiCaller }): Promise<Answer> {
    const id = lease.id;
    if (error instanceof LeaseLost) return this.#leaseLost(call, id, wrote, versionBefore);
    try {
      const refusal = (error as { refusal?: Refusal }).refusal;
      if (refusal) return await this.#refused(call, lease, refusal, versionBefore ?? 0, approval);
      if (error instanceof NotFound) return await this.#refused(call, lease, { rule: 'order-not-found', status: 404, detail: `commercetools has no order ${call.orderId}` }, 0, approval);
    } catch (failure) {
      if (failure instanceof LeaseLost) return this.#leaseLost(call, id, wrote, versionBefore);
      throw failure;
    }
    const message = error instanceof Error ? error.message : String(error);
    this.#logger.error({ actionId: id, err: { message: redactText(message) }, wrote }, 'an action failed');
    const entry = this.#entry(call, 'failed', { orderVersionBefore: versionBefore ?? null, error: redactText(message).slice(0, 500), writeMayHaveHappened: wrote });
    if (!wrote) {
      // Nothing was written: the key is given back (a pending refund stays pending) and a retry starts afresh.
      // (A call that lost its row meanwhile changes nothing: the row's new holder settles it.)
      if (approval) await lease.backToPending([entry], this.#now());
      else await lease.release([entry]);
    } else {
      // A write may have happened: the key stays held until its lease runs out; a retry then looks for the write.
      await this.#audit([entry]).catch(() => undefined);
    }
    const status = (error as { retryable?: boolean }).retryable === false ? 502 : 503;
    return { ...problem({ rule: 'commercetools-failed', status, detail: wrote ? 'commercetools failed during the write; retry with the same Idempotency-Key to learn whether it happened (it is never applied twice)' : 'commercetools could not be read or written; nothing was changed, retry' }), headers: { 'retry-after': String(wrote ? this.#config.leaseSeconds : 1) } };
  }

  /** The call ran past its lease and its row was taken over: the new holder settles it; this call only says so. */
  async #leaseLost(call: ActionCall, id: string, wrote: boolean, versionBefore: number | undefined): Promise<Answer> {
    this.#logger.warn({ actionId: id, wrote }, 'an action lost its lease while it ran (taken over by a retry or the sweeper); it writes nothing more');
    await this.#audit([this.#entry(call, 'failed', { orderVersionBefore: versionBefore ?? null, leaseLost: true, writeMayHaveHappened: wrote })]).catch(() => undefined);
    return {
      ...problem({ rule: 'idempotency-in-progress', status: 409, detail: `the call took longer than its lease (actions.leaseSeconds) and was taken over; retry with the same Idempotency-Key to learn its outcome (it is never applied twice)` }),
      headers: { 'retry-after': String(this.#config.leaseSeconds) },
    };
  }

  async #readFailure(call: ActionCall, error: unknown): Promise<Answer> {
    if (error instanceof NotFound) {
      await this.#audit([this.#entry(call, 'refused', { rule: 'order-not-found', dryRun: call.dryRun })]);
      return problem({ rule: 'order-not-found', status: 404, detail: `commercetools has no order ${call.orderId}` });
    }
    await this.#audit([this.#entry(call, 'failed', { dryRun: call.dryRun, error: redactText(error instanceof Error ? error.message : String(error)).slice(0, 500) })]);
    return problem({ rule: 'commercetools-failed', status: 503, detail: 'commercetools could not be read; nothing was changed, retry' });
  }

  // -------------------------------------------------------------------------------------------------------------
  // Views and audit

  #refundView(plan: Pick<RefundPlan, 'centAmount' | 'currencyCode' | 'fractionDigits' | 'parts'>) {
    const money = (cents: number) => moneyView(cents, plan.currencyCode, plan.fractionDigits);
    return {
      amount: money(plan.centAmount),
      parts: plan.parts.map((part: RefundPart) => ({
        what: part.what,
        ...(part.quantity !== undefined && { quantity: part.quantity }),
        gross: money(part.gross),
        ...(part.net !== undefined && { net: money(part.net) }),
        ...(part.tax !== undefined && { tax: money(part.tax) }),
      })),
    };
  }

  #amountDetail(plan: Pick<RefundPlan, 'centAmount' | 'currencyCode' | 'fractionDigits' | 'payment'> | undefined): Record<string, unknown> {
    if (!plan) return {};
    return { amount: moneyView(plan.centAmount, plan.currencyCode, plan.fractionDigits), paymentId: plan.payment.id };
  }

  #recordView(record: ActionRequest) {
    const body = record.request.body as { reason?: string } & Record<string, unknown>;
    return {
      id: record.id,
      kind: record.kind,
      orderId: record.orderId,
      status: record.status,
      requestedBy: { client: record.client, role: record.role },
      request: body,
      result: record.result ?? null,
      decidedBy: record.decidedBy,
      createdAt: new Date(record.createdAt).toISOString(),
      updatedAt: new Date(record.updatedAt).toISOString(),
    };
  }

  #entry(call: ActionCall, outcome: AuditEntry['outcome'], detail: Record<string, unknown>, fields: string[] | null = null, version: number | null = null): AuditEntry {
    const reason = (call.body as { reason?: unknown }).reason;
    return {
      at: this.#now(),
      action: `action.${call.kind}`,
      destination: 'commercetools',
      itemType: 'order',
      resourceId: call.orderId,
      version,
      fields,
      correlationId: call.correlationId,
      outcome,
      // The reason is an agent's free text: personal data in it (emails, phone numbers, card numbers) is removed.
      detail: JSON.stringify({
        actor: call.caller.client,
        role: call.caller.role,
        idempotencyKey: call.idempotencyKey,
        ...(typeof reason === 'string' && { reason: redactText(reason) }),
        ...detail,
      }),
    };
  }

  async #audit(entries: AuditEntry[]): Promise<void> {
    await insertAudit(this.#db, entries);
  }
}

class NotFound extends Error {
  constructor(orderId: string) {
    super(`no order ${orderId}`);
  }
}
