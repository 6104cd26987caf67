// A local Momentis for the tests, the sandbox and the benchmark, strict to the contract ctbridge wrote for it
// (spec/momentis/momentis.openapi.yaml, checked by ./contract.ts): every request is validated against it (400
// problem otherwise), and it answers only what the contract declares. Auth: OAuth2 client credentials at
// /oauth/token (RFC 6749 4.4; errors per 5.2) with scopes checked per operation (403 otherwise), or an API key in
// X-Api-Key. Members are created on upsert, or bare (their externalId only) when an interaction or transaction
// names one first. The timeline keeps each interaction once (by id) in occurrence order per member. Transactions
// honour Idempotency-Key (the same key again: the first answer, 200; with another body: 422). The ledger follows
// configurable rules: points per currency unit per currency (a currency without a rule is refused, 422), a reversal
// never takes back more than the order earned, tiers at balance thresholds, a reward each time lifetime points
// pass a multiple of a threshold. Every change of a member's loyalty state raises its version and sends signed
// webhooks (balance, tier, reward issued or redeemed) with the full snapshot to the configured URL — a member's in
// the order of its changes, different members' at once — retried with backoff on a failed delivery (not on 401,
// which says the signature is refused). Faults (429 with Retry-After,
// 5xx, latency, a reset connection) can be injected; state is inspectable (GET endpoints and the fields below).
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signMomentisBody } from '../../server/inbound-auth.ts';
import { readBody } from '../http-body.ts';
import { momentisContract } from './contract.ts';

export const MOMENTIS_SCOPES = ['members:write', 'interactions:write', 'loyalty:write'] as const;
type Scope = (typeof MOMENTIS_SCOPES)[number];

export type MomentisFault = ({ kind: 'status'; status: number; retryAfter?: number } | { kind: 'latency'; ms: number } | { kind: 'reset' }) & { only?: 'token' | 'api' };

export interface RewardValue {
  type: 'absolute' | 'relative';
  money?: Array<{ currencyCode: string; centAmount: number }>;
  permyriad?: number;
}

export interface MomentisRules {
  /** Points per whole unit of each currency (EUR: 1 → €12.34 earns 12). */
  pointsPerUnit: Record<string, number>;
  /** Tiers by balance, lowest first; the first must start at 0. */
  tiers: Array<{ name: string; threshold: number }>;
  /** A reward each time lifetime points pass a multiple of `everyPoints`. */
  reward?: { everyPoints: number; name: string; value: RewardValue; validDays?: number } | undefined;
}

export const DEFAULT_RULES: MomentisRules = {
  pointsPerUnit: { EUR: 1, USD: 1, GBP: 1 },
  tiers: [
    { name: 'bronze', threshold: 0 },
    { name: 'silver', threshold: 500 },
    { name: 'gold', threshold: 2000 },
  ],
  reward: { everyPoints: 500, name: '5 off your next order', value: { type: 'absolute', money: [{ currencyCode: 'EUR', centAmount: 500 }, { currencyCode: 'GBP', centAmount: 500 }, { currencyCode: 'USD', centAmount: 500 }] }, validDays: 90 },
};

export interface MomentisSimulatorOptions {
  clients?: Array<{ clientId: string; clientSecret: string; scopes?: readonly Scope[] }>;
  apiKeys?: string[];
  rules?: MomentisRules;
  /** Where webhooks go, signed with `secret`; without it none are sent. */
  webhook?: { url: string; secret: string; maxAttempts?: number; retryDelayMs?: number } | undefined;
  tokenLifetimeSeconds?: number;
  port?: number;
  now?: () => number;
}

export interface Loyalty {
  version: number;
  balance: number;
  tier: string;
  rewards: Array<{ id: string; name: string; status: 'available' | 'redeemed' | 'expired'; value: RewardValue; expiresAt?: string }>;
}

export interface Member {
  input: Record<string, unknown>;
  loyalty: Loyalty;
  /** Lifetime points earned (rewards are issued on these). */
  earned: number;
  createdAt: number;
  updatedAt: number;
}

export interface Interaction {
  id: string;
  type: string;
  occurredAt: string;
  context: Record<string, unknown>;
  link?: string;
  data: Record<string, unknown>;
}

export interface LedgerEntry {
  id: string;
  externalId: string;
  type: 'accrue' | 'reverse' | 'redeem';
  points: number;
  orderId: string;
  rewardId?: string;
  sourceId: string;
  idempotencyKey: string;
  body: Record<string, unknown>;
  createdAt: number;
}

export interface WebhookDelivery {
  body: Record<string, unknown>;
  attempts: number;
  /** The status of each attempt (0: no answer). */
  statuses: number[];
  state: 'pending' | 'delivered' | 'failed';
}

export interface MomentisSimulator {
  url: string;
  readonly members: Map<string, Member>;
  /** The member's timeline, in occurrence order. */
  timeline(externalId: string): Interaction[];
  /** Every transaction booked, in order (a replay with the same key books nothing). */
  readonly ledger: LedgerEntry[];
  /** Every request: method, path, status answered, body as received (parsed), headers that matter. */
  readonly requests: Array<{ method: string; path: string; status: number; body: unknown; idempotencyKey: string | undefined; answer: unknown }>;
  readonly webhooks: WebhookDelivery[];
  readonly stats: { tokensIssued: number; duplicateInteractions: number; idempotentReplays: number };
  faults: MomentisFault[];
  /** Where webhooks go from now on (the receiver may start after the simulator); undefined: none are sent. */
  setWebhook(webhook: MomentisSimulatorOptions['webhook']): void;
  /** Waits until no webhook is pending or in flight (retries included, up to their last attempt). */
  webhooksSettled(): Promise<void>;
  close(): Promise<void>;
}

const PROBLEM = 'application/problem+json';

export async function startMomentisSimulator(options: MomentisSimulatorOptions = {}): Promise<MomentisSimulator> {
  const contract = momentisContract();
  const now = options.now ?? Date.now;
  const rules = options.rules ?? DEFAULT_RULES;
  const lifetime = options.tokenLifetimeSeconds ?? 3600;
  const tokens = new Map<string, { expiresAt: number; scopes: Set<string> }>();
  const members = new Map<string, Member>();
  const timelines = new Map<string, Interaction[]>();
  const interactionIds = new Map<string, Set<string>>();
  const ledger: LedgerEntry[] = [];
  const idempotent = new Map<string, { digest: string; status: number; answer: unknown }>();
  const requests: MomentisSimulator['requests'] = [];
  const webhooks: WebhookDelivery[] = [];
  const stats = { tokensIssued: 0, duplicateInteractions: 0, idempotentReplays: 0 };
  const state = { faults: [] as MomentisFault[] };
  let inFlight = 0;
  let settledWaiters: Array<() => void> = [];
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;

  const problem = (status: number, title: string, detail: string) => ({ type: `https://momentis.example/problems/${title.toLowerCase().replaceAll(' ', '-')}`, title, status, detail });

  const memberOf = (externalId: string): Member => {
    let member = members.get(externalId);
    if (!member) {
      member = { input: { externalId }, loyalty: { version: 0, balance: 0, tier: rules.tiers[0]?.name ?? 'member', rewards: [] }, earned: 0, createdAt: now(), updatedAt: now() };
      members.set(externalId, member);
    }
    return member;
  };
  const memberView = (externalId: string, member: Member) => ({ ...member.input, externalId, loyalty: member.loyalty, createdAt: new Date(member.createdAt).toISOString(), updatedAt: new Date(member.updatedAt).toISOString() });

  // Webhooks, one delivery at a time in the order the changes happened; a failure is retried after a backoff.
  let hook = options.webhook;
  const settle = () => {
    if (inFlight === 0 && webhooks.every((delivery) => delivery.state !== 'pending')) settledWaiters.splice(0).forEach((resolve) => resolve());
  };
  /** Delivers one webhook, retrying with backoff before the member's next one goes, so they arrive in the order of its changes. */
  const deliver = async (delivery: WebhookDelivery): Promise<void> => {
    while (delivery.state === 'pending' && !closed && hook) {
      const maxAttempts = hook.maxAttempts ?? 5;
      const retryDelayMs = hook.retryDelayMs ?? 1000;
      inFlight += 1;
      const raw = JSON.stringify(delivery.body);
      let status: number;
      try {
        const response = await fetch(hook.url, { method: 'POST', headers: { 'content-type': 'application/json', 'momentis-signature': signMomentisBody(raw, hook.secret, now()), 'user-agent': 'Momentis-Webhooks/1.0' }, body: raw, signal: AbortSignal.timeout(10_000) });
        status = response.status;
        await response.arrayBuffer();
      } catch {
        status = 0;
      }
      inFlight -= 1;
      delivery.attempts += 1;
      delivery.statuses.push(status);
      if (status >= 200 && status < 300) delivery.state = 'delivered';
      else if (status === 401 || delivery.attempts >= maxAttempts) delivery.state = 'failed';
      else await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          resolve();
        }, retryDelayMs * 2 ** (delivery.attempts - 1));
        timers.add(timer);
      });
    }
    settle();
  };
  // One member's webhooks go one after another, in the order of the changes; different members' at once.
  const chains = new Map<string, Promise<void>>();
  const emit = (externalId: string, member: Member, types: string[]) => {
    if (!hook) return;
    for (const type of types) {
      const delivery: WebhookDelivery = {
        body: { id: `evt_${randomBytes(12).toString('hex')}`, type, occurredAt: new Date(now()).toISOString(), member: { externalId }, loyalty: structuredClone(member.loyalty) },
        attempts: 0,
        statuses: [],
        state: 'pending',
      };
      webhooks.push(delivery);
      const next = (chains.get(externalId) ?? Promise.resolve()).then(() => deliver(delivery));
      chains.set(externalId, next);
      void next.then(() => {
        if (chains.get(externalId) === next) chains.delete(externalId);
      });
    }
  };

  const tierOf = (balance: number) => [...rules.tiers].reverse().find((tier) => balance >= tier.threshold)?.name ?? rules.tiers[0]?.name ?? 'member';

  /** Books a transaction: the entry and the webhook types its change raises, or a problem. */
  const book = (externalId: string, body: Record<string, unknown>, key: string): { status: number; answer: unknown } => {
    const member = memberOf(externalId);
    const orderId = String(body.orderId);
    const forOrder = ledger.filter((entry) => entry.externalId === externalId && entry.orderId === orderId);
    let points = 0;
    let rewardId: string | undefined;
    const events: string[] = [];
    const before = { balance: member.loyalty.balance, tier: member.loyalty.tier };
    if (body.type === 'accrue' || body.type === 'reverse') {
      const amount = body.amount as { currencyCode: string; centAmount: number; fractionDigits: number };
      const rate = rules.pointsPerUnit[amount.currencyCode];
      if (rate === undefined) return { status: 422, answer: problem(422, 'Unknown currency', `no points rule for ${amount.currencyCode}`) };
      const computed = Math.floor((amount.centAmount / 10 ** amount.fractionDigits) * rate);
      if (body.type === 'accrue') points = computed;
      else {
        // Never more than the order earned, less what was taken back already.
        const left = forOrder.reduce((sum, entry) => sum + (entry.type === 'redeem' ? 0 : entry.points), 0);
        points = -Math.min(computed, Math.max(0, left));
      }
    } else {
      const reward = member.loyalty.rewards.find((candidate) => candidate.id === body.rewardId);
      if (!reward) return { status: 422, answer: problem(422, 'Unknown reward', `member ${externalId} has no reward ${String(body.rewardId)}`) };
      if (reward.status !== 'available') return { status: 409, answer: problem(409, 'Reward not available', `reward ${reward.id} is ${reward.status}`) };
      reward.status = 'redeemed';
      rewardId = reward.id;
      events.push('member.reward_redeemed');
    }
    const entry: LedgerEntry = { id: randomUUID(), externalId, type: body.type as LedgerEntry['type'], points, orderId, ...(rewardId && { rewardId }), sourceId: String(body.sourceId), idempotencyKey: key, body, createdAt: now() };
    ledger.push(entry);
    member.loyalty.balance += points;
    if (points > 0) {
      const issuedBefore = rules.reward ? Math.floor(member.earned / rules.reward.everyPoints) : 0;
      member.earned += points;
      const issuedAfter = rules.reward ? Math.floor(member.earned / rules.reward.everyPoints) : 0;
      for (let i = issuedBefore; i < issuedAfter; i += 1) {
        const reward = rules.reward!;
        member.loyalty.rewards.push({ id: `rw_${randomBytes(8).toString('hex')}`, name: reward.name, status: 'available', value: reward.value, ...(reward.validDays && { expiresAt: new Date(now() + reward.validDays * 86_400_000).toISOString() }) });
        events.push('member.reward_issued');
      }
    }
    member.loyalty.tier = tierOf(member.loyalty.balance);
    if (member.loyalty.balance !== before.balance) events.unshift('member.balance_changed');
    if (member.loyalty.tier !== before.tier) events.push('member.tier_changed');
    if (events.length > 0) {
      member.loyalty.version += 1;
      member.updatedAt = now();
      emit(externalId, member, events);
    }
    const transaction = { id: entry.id, type: entry.type, points, orderId, ...(rewardId && { rewardId }), createdAt: new Date(entry.createdAt).toISOString() };
    return { status: 201, answer: { transaction, balance: member.loyalty.balance } };
  };

  /** The scopes the request's credentials carry, or the answer refusing them. */
  const authenticate = (req: IncomingMessage): Set<string> | { status: number; answer: unknown; headers: Record<string, string> } => {
    const key = req.headers['x-api-key'];
    if (typeof key === 'string') {
      if ((options.apiKeys ?? []).includes(key)) return new Set(MOMENTIS_SCOPES);
      return { status: 401, answer: problem(401, 'Unauthorized', 'unknown API key'), headers: {} };
    }
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const token = bearer ? tokens.get(bearer[1]!) : undefined;
    if (!token || token.expiresAt <= now()) return { status: 401, answer: problem(401, 'Unauthorized', !bearer ? 'no credentials: a bearer token or X-Api-Key' : 'unknown or expired token'), headers: { 'www-authenticate': 'Bearer error="invalid_token"' } };
    return token.scopes;
  };

  const tokenEndpoint = (req: IncomingMessage, raw: string): { status: number; answer: unknown } => {
    const oauthError = (status: number, error: string, description: string) => ({ status, answer: { error, error_description: description } });
    if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) return oauthError(400, 'invalid_request', 'the token request is form-encoded');
    const form = Object.fromEntries(new URLSearchParams(raw));
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    if (basic) {
      const [id, secret] = Buffer.from(basic[1]!, 'base64').toString().split(':');
      form.client_id = decodeURIComponent(id ?? '');
      form.client_secret = decodeURIComponent(secret ?? '');
    }
    const verdict = contract.request('POST', '/oauth/token', form);
    if (!verdict.ok) return form.grant_type !== undefined && form.grant_type !== 'client_credentials' ? oauthError(400, 'unsupported_grant_type', `grant ${form.grant_type} is not supported`) : oauthError(400, 'invalid_request', verdict.errors);
    const client = (options.clients ?? []).find((c) => c.clientId === form.client_id);
    if (!client || client.clientSecret !== form.client_secret) return oauthError(401, 'invalid_client', 'unknown client or wrong secret');
    const allowed = new Set<string>(client.scopes ?? MOMENTIS_SCOPES);
    const asked = form.scope ? form.scope.split(' ').filter(Boolean) : [...allowed];
    const refused = asked.filter((scope) => !allowed.has(scope));
    if (refused.length > 0) return oauthError(400, 'invalid_scope', `not granted: ${refused.join(' ')}`);
    const token = randomBytes(24).toString('base64url');
    tokens.set(token, { expiresAt: now() + lifetime * 1000, scopes: new Set(asked) });
    stats.tokensIssued += 1;
    return { status: 200, answer: { access_token: token, token_type: 'bearer', expires_in: lifetime, scope: asked.join(' ') } };
  };

  const SCOPE_OF: Record<string, Scope> = { '/v1/members/{externalId}': 'members:write', '/v1/members/{externalId}/interactions': 'interactions:write', '/v1/members/{externalId}/transactions': 'loyalty:write' };

  const api = (req: IncomingMessage, path: string, raw: string): { status: number; answer: unknown; headers?: Record<string, string> } => {
    const route = contract.route(path);
    const method = req.method ?? 'GET';
    if (!route || route.template === '/oauth/token') return { status: 404, answer: problem(404, 'Not found', `no resource at ${path}`) };
    if (!contract.has(method, route.template)) return { status: 405, answer: problem(405, 'Method not allowed', `${method} is not allowed on ${route.template}`) };
    const auth = authenticate(req);
    if (!(auth instanceof Set)) return auth;
    const scope = SCOPE_OF[route.template]!;
    if (!auth.has(scope)) return { status: 403, answer: problem(403, 'Forbidden', `the token lacks the scope ${scope}`) };
    const externalId = route.params.externalId!;
    if (method === 'GET') {
      const member = members.get(externalId);
      if (!member) return { status: 404, answer: problem(404, 'Not found', `no member ${externalId}`) };
      return route.template.endsWith('/interactions') ? { status: 200, answer: { interactions: timelines.get(externalId) ?? [] } } : { status: 200, answer: { member: memberView(externalId, member) } };
    }
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) return { status: 415, answer: problem(415, 'Unsupported media type', 'send application/json') };
    let body: unknown;
    try {
      body = JSON.parse(raw);
    } catch {
      return { status: 400, answer: problem(400, 'Invalid body', 'the body is not JSON') };
    }
    const verdict = contract.request(method, route.template, body);
    if (!verdict.ok) return { status: 400, answer: problem(400, 'Invalid body', verdict.errors) };
    const input = body as Record<string, unknown>;

    if (route.template === '/v1/members/{externalId}') {
      if (input.externalId !== externalId) return { status: 400, answer: problem(400, 'Invalid body', 'externalId differs from the path') };
      const existed = members.has(externalId) && Object.keys(members.get(externalId)!.input).length > 1;
      const member = memberOf(externalId);
      member.input = input;
      member.updatedAt = now();
      return { status: existed ? 200 : 201, answer: { member: memberView(externalId, member) } };
    }
    if (route.template === '/v1/members/{externalId}/interactions') {
      memberOf(externalId);
      const timeline = timelines.get(externalId) ?? [];
      const seen = interactionIds.get(externalId) ?? new Set<string>();
      let accepted = 0;
      let duplicates = 0;
      for (const interaction of input.interactions as Interaction[]) {
        if (seen.has(interaction.id)) {
          duplicates += 1;
          continue;
        }
        seen.add(interaction.id);
        accepted += 1;
        // Kept in occurrence order, whatever order they arrive in (ties by id, so the order is total).
        const at = Date.parse(interaction.occurredAt);
        let index = timeline.length;
        while (index > 0 && (Date.parse(timeline[index - 1]!.occurredAt) > at || (Date.parse(timeline[index - 1]!.occurredAt) === at && timeline[index - 1]!.id > interaction.id))) index -= 1;
        timeline.splice(index, 0, interaction);
      }
      stats.duplicateInteractions += duplicates;
      timelines.set(externalId, timeline);
      interactionIds.set(externalId, seen);
      return { status: 202, answer: { accepted, duplicates } };
    }
    // Transactions.
    const key = req.headers['idempotency-key'];
    if (typeof key !== 'string' || key === '' || key.length > 255) return { status: 400, answer: problem(400, 'Missing Idempotency-Key', 'a transaction needs an Idempotency-Key header (1-255 characters)') };
    const digest = createHash('sha256').update(`${externalId}\u0000${raw}`).digest('hex');
    const scoped = `${externalId}\u0000${key}`;
    const earlier = idempotent.get(scoped);
    if (earlier) {
      if (earlier.digest !== digest) return { status: 422, answer: problem(422, 'Idempotency-Key reused', `the key ${key} was used with another body`) };
      stats.idempotentReplays += 1;
      return { status: earlier.status === 201 ? 200 : earlier.status, answer: earlier.answer };
    }
    const booked = book(externalId, input, key);
    if (booked.status < 500) idempotent.set(scoped, { digest, ...booked });
    return booked;
  };

  const server: Server = createServer((req, res) => {
    void readBody(req).then(async (buffer) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const raw = buffer.toString('utf8');
      const isToken = url.pathname === '/oauth/token';
      let parsed: unknown;
      try {
        parsed = raw === '' ? undefined : isToken ? Object.fromEntries(new URLSearchParams(raw)) : JSON.parse(raw);
      } catch {
        parsed = raw;
      }
      const respond = (status: number, answer: unknown, headers: Record<string, string> = {}) => {
        requests.push({ method: req.method ?? 'GET', path: `${url.pathname}${url.search}`, status, body: isToken ? { grant_type: (parsed as Record<string, unknown> | undefined)?.grant_type } : parsed, idempotencyKey: typeof req.headers['idempotency-key'] === 'string' ? req.headers['idempotency-key'] : undefined, answer });
        const text = JSON.stringify(answer);
        res.writeHead(status, { 'content-type': status >= 400 && !isToken ? PROBLEM : 'application/json', ...headers });
        res.end(text);
      };
      const at = state.faults.findIndex((fault) => fault.only === undefined || fault.only === (isToken ? 'token' : 'api'));
      if (at !== -1) {
        const [fault] = state.faults.splice(at, 1);
        if (fault!.kind === 'reset') return void req.socket.destroy();
        if (fault!.kind === 'latency') await new Promise((resolve) => setTimeout(resolve, fault!.ms));
        else return respond(fault!.status, problem(fault!.status, fault!.status === 429 ? 'Too many requests' : 'Unavailable', `injected ${fault!.status}`), fault!.retryAfter === undefined ? {} : { 'retry-after': String(fault!.retryAfter) });
      }
      if (isToken) {
        if (req.method !== 'POST') return respond(405, { error: 'invalid_request', error_description: 'POST the token request' });
        const answer = tokenEndpoint(req, raw);
        return respond(answer.status, answer.answer, { 'cache-control': 'no-store' });
      }
      const answer = api(req, url.pathname, raw);
      return respond(answer.status, answer.answer, answer.headers);
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    members,
    timeline: (externalId) => timelines.get(externalId) ?? [],
    ledger,
    requests,
    webhooks,
    stats,
    get faults() {
      return state.faults;
    },
    set faults(faults) {
      state.faults = faults;
    },
    setWebhook(webhook) {
      hook = webhook;
    },
    webhooksSettled() {
      return new Promise<void>((resolve) => {
        settledWaiters.push(resolve);
        settle();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        settledWaiters.splice(0).forEach((done) => done());
        settledWaiters = [];
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
