// The agent actions API: POST /v1/actions/orders/{orderId}/refunds | cancel-items | state, GET /v1/actions/{id},
// POST /v1/actions/{id}/approve | reject. Each operation is described in the OpenAPI document with the zod schemas
// it validates with. Bodies arrive raw (server/app.ts) and are parsed here, so malformed JSON and invalid fields get
// a precise problem+json answer; the service (service.ts) does the rest.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CORRELATION_ID } from '../server/ingest-routes.ts';
import type { ApiCaller, ApiClients } from '../server/api-clients.ts';
import { fastifyPath, problemSchema, type ApiDescription, type ParameterSpec } from '../server/openapi.ts';
import { sendProblem } from '../server/problem.ts';
import { decimalSchema, ORDER_STATES, type ActionKind } from './config.ts';
import { problem, type ActionBody, type ActionsService, type Answer } from './service.ts';

const reason = z.string().trim().min(1).max(500).describe('why the agent acts; personal data in it is removed before it is audited');
const lineItems = z
  .array(z.strictObject({ lineItemId: z.string().min(1).max(256), quantity: z.number().int().min(1).max(1_000_000) }))
  .min(1)
  .max(500);

export const refundBodySchema = z
  .strictObject({
    amount: z.strictObject({ currencyCode: z.string().regex(/^[A-Z]{3}$/), amount: decimalSchema }).optional().describe("an amount in the order's currency, with at most its fraction digits"),
    lineItems: lineItems.optional().describe('line items and quantities; the amount and its tax share come from their taxed prices'),
    shipping: z.boolean().optional().describe('also refund the shipping price'),
    paymentId: z.string().min(1).optional().describe('the payment to refund on; by default the first with a successful charge and enough left'),
    reason,
  })
  .refine((body) => (body.amount === undefined) !== (body.lineItems === undefined && body.shipping !== true), { message: 'give either amount, or lineItems and/or shipping: true' })
  .meta({ id: 'RefundRequest' });

export const cancelBodySchema = z
  .strictObject({
    lineItems: lineItems.describe('line items and the quantities to cancel'),
    refund: z.boolean().optional().describe('also refund the cancelled items'),
    shipping: z.boolean().optional().describe('with refund: also refund the shipping price'),
    reason,
  })
  .meta({ id: 'CancelItemsRequest' });

export const stateBodySchema = z
  .strictObject({
    orderState: z.enum(ORDER_STATES).optional(),
    state: z.string().min(1).max(256).optional().describe('the key of an OrderState State of the project (its workflow)'),
    reason,
  })
  .refine((body) => body.orderState !== undefined || body.state !== undefined, { message: 'give orderState or state' })
  .meta({ id: 'StateChangeRequest' });

const money = z.strictObject({ currencyCode: z.string(), amount: z.string(), centAmount: z.number().int() }).meta({ id: 'ActionMoney' });
const refundView = z.strictObject({
  amount: money,
  parts: z.array(z.strictObject({ what: z.string(), quantity: z.number().int().optional(), gross: money, net: money.optional(), tax: money.optional() })),
  paymentId: z.string().optional(),
  paymentVersion: z.number().int().optional(),
  transactionId: z.string().optional(),
  transactionState: z.string().optional(),
});

export const doneSchema = z
  .strictObject({
    id: z.string(),
    kind: z.enum(['refund', 'cancel-items', 'change-state']),
    status: z.literal('done'),
    orderId: z.string(),
    orderVersion: z.number().int(),
    cancelled: z.array(z.strictObject({ lineItemId: z.string(), quantity: z.number().int() })).optional(),
    orderState: z.string().optional(),
    state: z.string().optional(),
    refund: refundView.optional(),
  })
  .meta({ id: 'ActionDone' });

export const pendingSchema = z
  .strictObject({ id: z.string(), kind: z.literal('refund'), status: z.literal('pending'), orderId: z.string(), orderVersion: z.number().int(), refund: refundView, detail: z.string() })
  .meta({ id: 'ActionPending' });

export const dryRunSchema = z
  .strictObject({
    dryRun: z.literal(true),
    kind: z.enum(['refund', 'cancel-items', 'change-state']),
    orderId: z.string(),
    orderVersion: z.number().int(),
    checks: z.array(z.string()).describe('the safeguards the call passed'),
    needsApproval: z.boolean().describe("whether the refund is above the caller's limit (it would wait for approval)"),
    refund: refundView.optional(),
    writes: z.array(z.strictObject({ resource: z.enum(['order', 'payment']), id: z.string(), version: z.number().int(), actions: z.array(z.looseObject({ action: z.string() })) })).describe('the exact commercetools update actions'),
  })
  .meta({ id: 'ActionDryRun' });

export const actionViewSchema = z
  .strictObject({
    id: z.string(),
    kind: z.string(),
    orderId: z.string(),
    status: z.enum(['in-progress', 'pending', 'done', 'refused', 'rejected']),
    requestedBy: z.strictObject({ client: z.string(), role: z.string() }),
    request: z.record(z.string(), z.unknown()),
    result: z.unknown(),
    decidedBy: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'Action' });

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

const orderIdParameter: ParameterSpec = { name: 'orderId', in: 'path', schema: z.string().min(1), description: 'the commercetools order id' };
const actionHeaders: ParameterSpec[] = [
  { name: 'Idempotency-Key', in: 'header', required: true, schema: z.string().regex(IDEMPOTENCY_KEY), description: 'the same key and body give the same answer again; the same key with another body is refused (422)' },
  { name: 'If-Match', in: 'header', schema: z.string().regex(/^(W\/)?"?\d+"?$/), description: 'the order version the agent saw; 412 when the order moved since' },
  { name: 'dryRun', in: 'query', schema: z.enum(['true', 'false']), description: 'true: check and list the commercetools update actions without writing' },
];
const actionResponses = {
  200: { description: 'done, or (dryRun) the checks and the update actions', schema: z.union([doneSchema, dryRunSchema]) },
  202: { description: 'above the role limit: a pending approval', schema: pendingSchema },
  400: { description: 'malformed body or headers' },
  401: { description: 'no valid API key or bearer token' },
  403: { description: 'the role may not take this action' },
  404: { description: 'no such order' },
  409: { description: 'refused by a safeguard (the rule is in `rule`), or the same key is in progress' },
  412: { description: 'the order moved past If-Match' },
  422: { description: 'refused: invalid amount, currency, line item…, or the Idempotency-Key was used with another body' },
  503: { description: 'commercetools could not be reached; retry with the same key' },
};

export interface ActionRoutesOptions {
  service: ActionsService;
  clients: ApiClients;
  api: ApiDescription;
}

function send(reply: FastifyReply, answer: Answer): FastifyReply {
  for (const [name, value] of Object.entries(answer.headers ?? {})) void reply.header(name, value);
  return reply
    .code(answer.status)
    .type(answer.problem ? 'application/problem+json' : 'application/json')
    .send(answer.body);
}

function correlationIdOf(request: FastifyRequest): string {
  const header = request.headers['x-correlation-id'];
  return typeof header === 'string' && CORRELATION_ID.test(header) ? header : randomUUID();
}

async function callerOf(request: FastifyRequest, reply: FastifyReply, clients: ApiClients): Promise<ApiCaller | undefined> {
  const identified = await clients.identify(request.headers);
  if (identified.ok) return identified.caller;
  void sendProblem(reply.header('www-authenticate', 'Bearer'), 401, 'unauthorized', identified.detail);
  return undefined;
}

function parseBody<T>(request: FastifyRequest, schema: z.ZodType<T>): { ok: true; value: T } | { ok: false; answer: Answer } {
  const raw = request.body;
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : typeof raw === 'string' ? raw : '';
  if (text.trim() === '') return { ok: false, answer: problem({ rule: 'empty-body', status: 400, detail: 'the request needs a JSON body' }) };
  const type = request.headers['content-type'];
  if (type !== undefined && !/^application\/([\w.+-]+\+)?json\b/i.test(type)) return { ok: false, answer: problem({ rule: 'unsupported-media-type', status: 415, detail: 'send the body as application/json' }) };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, answer: problem({ rule: 'malformed-json', status: 400, detail: `the body is not valid JSON: ${(error as Error).message}` }) };
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => ({ path: issue.path.join('.') || '(body)', message: issue.message }));
    return { ok: false, answer: problem({ rule: 'invalid-body', status: 400, detail: issues.map((i) => `${i.path}: ${i.message}`).join('; ') }, { issues }) };
  }
  return { ok: true, value: parsed.data };
}

export function actionRoutes(app: FastifyInstance, options: ActionRoutesOptions): void {
  const { service, clients, api } = options;
  const operations: { kind: ActionKind; path: string; operationId: string; summary: string; description: string; schema: z.ZodType<ActionBody> }[] = [
    {
      kind: 'refund',
      path: '/v1/actions/orders/{orderId}/refunds',
      operationId: 'refundOrder',
      summary: 'Refund an amount or line items of an order',
      description: "Adds a Refund transaction to the order's payment that holds the successful charge (the payment service provider executes it). Never more than charged minus refunded; above the role's limit it becomes a pending approval (202).",
      schema: refundBodySchema,
    },
    {
      kind: 'cancel-items',
      path: '/v1/actions/orders/{orderId}/cancel-items',
      operationId: 'cancelOrderItems',
      summary: 'Cancel quantities of line items (optionally refunding them)',
      description: 'Moves the quantities into the configured cancelled LineItemState (transitionLineItemState). Shipped or already cancelled quantities are refused.',
      schema: cancelBodySchema,
    },
    {
      kind: 'change-state',
      path: '/v1/actions/orders/{orderId}/state',
      operationId: 'changeOrderState',
      summary: "Change an order's orderState or workflow state",
      description: 'Only along allowed transitions; never out of a final state, never to Complete while the payment is open.',
      schema: stateBodySchema,
    },
  ];
  for (const operation of operations) {
    api.add({
      method: 'post',
      path: operation.path,
      operationId: operation.operationId,
      summary: operation.summary,
      description: operation.description,
      tags: ['actions'],
      security: ['apiKey', 'bearerJwt'],
      parameters: [orderIdParameter, ...actionHeaders],
      requestBody: { schema: operation.schema },
      responses: actionResponses,
    });
    app.post(fastifyPath(operation.path), async (request, reply) => {
      const caller = await callerOf(request, reply, clients);
      if (!caller) return reply;
      const key = request.headers['idempotency-key'];
      if (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key)) {
        return send(reply, problem({ rule: 'idempotency-key-required', status: 400, detail: 'an Idempotency-Key header (1 to 255 visible ASCII characters) is required' }));
      }
      const ifMatchHeader = request.headers['if-match'];
      let ifMatch: number | undefined;
      if (ifMatchHeader !== undefined) {
        const match = typeof ifMatchHeader === 'string' ? /^(?:W\/)?"?(\d{1,15})"?$/.exec(ifMatchHeader.trim()) : null;
        if (!match) return send(reply, problem({ rule: 'invalid-if-match', status: 400, detail: 'If-Match must be the order version, e.g. "7"' }));
        ifMatch = Number(match[1]);
      }
      const dryRunParam = (request.query as Record<string, unknown>).dryRun;
      if (dryRunParam !== undefined && dryRunParam !== 'true' && dryRunParam !== 'false') return send(reply, problem({ rule: 'invalid-parameter', status: 400, detail: 'dryRun must be true or false' }));
      const body = parseBody(request, operation.schema);
      if (!body.ok) return send(reply, body.answer);
      const { orderId } = request.params as { orderId: string };
      const answer = await service.perform({ kind: operation.kind, orderId, body: body.value, caller, idempotencyKey: key, ifMatch, dryRun: dryRunParam === 'true', correlationId: correlationIdOf(request) });
      return send(reply, answer);
    });
  }

  const idParameter: ParameterSpec = { name: 'id', in: 'path', schema: z.string().min(1), description: 'the action id' };
  api.add({
    method: 'get',
    path: '/v1/actions/{id}',
    operationId: 'getAction',
    summary: 'An action and its status (pending approvals included)',
    tags: ['actions'],
    security: ['apiKey', 'bearerJwt'],
    parameters: [idParameter],
    responses: { 200: { description: 'the action', schema: actionViewSchema }, 401: { description: 'no valid credentials' }, 404: { description: 'no such action (or not one the caller may see)' } },
  });
  app.get(fastifyPath('/v1/actions/{id}'), async (request, reply) => {
    const caller = await callerOf(request, reply, clients);
    if (!caller) return reply;
    return send(reply, await service.view((request.params as { id: string }).id, caller));
  });

  for (const decision of ['approve', 'reject'] as const) {
    api.add({
      method: 'post',
      path: `/v1/actions/{id}/${decision}`,
      operationId: `${decision}Action`,
      summary: decision === 'approve' ? 'Approve a pending refund (it is checked again and executed)' : 'Reject a pending refund',
      description: 'By a role that may approve, never by the requester.',
      tags: ['actions'],
      security: ['apiKey', 'bearerJwt'],
      parameters: [idParameter],
      responses: {
        200: { description: 'the action after the decision', schema: actionViewSchema },
        401: { description: 'no valid credentials' },
        403: { description: 'the role may not decide, or the caller asked for it', schema: problemSchema },
        404: { description: 'no such action' },
        409: { description: 'not pending, or refused by a safeguard when executed' },
      },
    });
    app.post(fastifyPath(`/v1/actions/{id}/${decision}`), async (request, reply) => {
      const caller = await callerOf(request, reply, clients);
      if (!caller) return reply;
      return send(reply, await service.decide((request.params as { id: string }).id, caller, decision, correlationIdOf(request)));
    });
  }
}
