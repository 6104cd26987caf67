// A local novomind iAGENT REST API for the tests, the sandbox and the benchmark, as one installation with the
// novomind preset's paths (destinations/novomind/settings.ts). What is public of novomind
// (vendored in spec/novomind/README.md) it follows: the REST base
// `/iMail/api/rest/…`; media-type versioning, `Accept: application/vnd.novomind.iagent-v2+json` required (only v2
// from iAGENT 11.6 on: another Accept is 406); OAuth2 with the token endpoint at `/iMail/api/rest/token` and bearer
// tokens only (RFC 6749 password and client-credentials grants, refresh tokens; errors per RFC 6749 5.2); errors as
// JSON with a message and the HTTP status. The customer and status-note endpoints are this installation's (each
// installation has its own, listed in its API console): `GET/POST /customers`, `GET/PUT/DELETE
// /customers/{id}`, `POST/GET /orders/{orderNumber}/statusnotes`. Error bodies come in the installation's shape
// (`errorStyle`). Tokens can be expired or revoked by a test; faults can be injected. State is inspectable.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBody } from '../http-body.ts';

export const V2_MEDIA_TYPE = 'application/vnd.novomind.iagent-v2+json';
const BASE = '/iMail/api/rest';
export const STATUS_NOTE_KINDS = ['shipment', 'cancellation', 'refund', 'return', 'order', 'payment'] as const;

/** An injected failure for the next request (of the token endpoint or the API only, when `only` says). */
export type NovomindFault = ({ kind: 'status'; status: number; retryAfter?: number } | { kind: 'reset' }) & { only?: 'token' | 'api' };

export interface NovomindSimulatorOptions {
  clients: Array<{ clientId: string; clientSecret: string }>;
  users: Array<{ username: string; password: string }>;
  /** How long an access token lives, in seconds (default 3600). */
  tokenLifetimeSeconds?: number;
  /** The installation's error body: `message` ({status, message, errorCode}) or `legacy` ({error: {code, text}}). */
  errorStyle?: 'message' | 'legacy';
  port?: number;
  now?: () => number;
}

export interface StatusNote {
  id: string;
  orderNumber: string;
  body: Record<string, unknown>;
  receivedAt: number;
  idempotencyKey: string | undefined;
}

export interface NovomindSimulator {
  url: string;
  readonly customers: Map<string, Record<string, unknown>>;
  /** Every status note received, in arrival order. */
  readonly notes: StatusNote[];
  /** Every request, in order: method, path, status answered, the media type asked for. */
  readonly requests: Array<{ method: string; path: string; status: number; accept: string | undefined }>;
  readonly stats: { tokensIssued: number; refused401: number };
  faults: NovomindFault[];
  /** Every token issued so far expires now (as if its lifetime had passed). */
  expireTokens(): void;
  /** Every token issued so far is revoked (an administrator withdrew the client's access). */
  revokeTokens(): void;
  close(): Promise<void>;
}

interface Issued {
  expiresAt: number;
  revoked: boolean;
}

export async function startNovomindSimulator(options: NovomindSimulatorOptions): Promise<NovomindSimulator> {
  const now = options.now ?? Date.now;
  const lifetime = options.tokenLifetimeSeconds ?? 3600;
  const style = options.errorStyle ?? 'message';
  const tokens = new Map<string, Issued>();
  const refreshTokens = new Map<string, string>();
  const customers = new Map<string, Record<string, unknown>>();
  const notes: StatusNote[] = [];
  const requests: NovomindSimulator['requests'] = [];
  const stats = { tokensIssued: 0, refused401: 0 };
  let nextCustomer = 1000;
  const state = { faults: [] as NovomindFault[] };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = body === undefined ? '' : JSON.stringify(body);
    res.writeHead(status, { ...(text && { 'content-type': status >= 400 && status !== 401 ? 'application/json' : V2_MEDIA_TYPE }), ...headers });
    res.end(text);
  };
  /** An error in this installation's shape. */
  const fail = (res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}) =>
    send(res, status, style === 'legacy' ? { error: { code, text: message } } : { status, message, errorCode: code }, { 'content-type': 'application/json', ...headers });

  const issue = (res: ServerResponse, withRefresh: boolean) => {
    const token = randomBytes(24).toString('base64url');
    tokens.set(token, { expiresAt: now() + lifetime * 1000, revoked: false });
    stats.tokensIssued += 1;
    const refresh = withRefresh ? randomBytes(24).toString('base64url') : undefined;
    if (refresh) refreshTokens.set(refresh, token);
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify({ access_token: token, token_type: 'bearer', expires_in: lifetime, ...(refresh && { refresh_token: refresh }) }));
  };

  const tokenEndpoint = (req: IncomingMessage, res: ServerResponse, raw: string) => {
    // RFC 6749 5.2 error answers.
    const oauthError = (status: number, error: string, description: string) => send(res, status, { error, error_description: description }, { 'content-type': 'application/json' });
    if (!(req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) return oauthError(400, 'invalid_request', 'the token request is form-encoded');
    const form = new URLSearchParams(raw);
    let clientId = form.get('client_id');
    let clientSecret = form.get('client_secret');
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    if (basic) {
      const [id, secret] = Buffer.from(basic[1]!, 'base64').toString().split(':');
      clientId = decodeURIComponent(id ?? '');
      clientSecret = decodeURIComponent(secret ?? '');
    }
    const client = options.clients.find((c) => c.clientId === clientId);
    if (!client || client.clientSecret !== clientSecret) return oauthError(401, 'invalid_client', 'unknown client or wrong secret');
    const grant = form.get('grant_type');
    if (grant === 'password') {
      const user = options.users.find((u) => u.username === form.get('username'));
      if (!user || user.password !== form.get('password')) return oauthError(400, 'invalid_grant', 'wrong user name or password');
      return issue(res, true);
    }
    if (grant === 'client_credentials') return issue(res, false);
    if (grant === 'refresh_token') {
      const refresh = form.get('refresh_token') ?? '';
      const old = refreshTokens.get(refresh);
      if (old === undefined || tokens.get(old)?.revoked) return oauthError(400, 'invalid_grant', 'unknown or revoked refresh token');
      refreshTokens.delete(refresh);
      return issue(res, true);
    }
    return oauthError(400, 'unsupported_grant_type', `grant ${grant ?? '(none)'} is not supported`);
  };

  const api = (req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams, raw: string): void => {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
    const issued = bearer ? tokens.get(bearer[1]!) : undefined;
    if (!issued || issued.revoked || issued.expiresAt <= now()) {
      stats.refused401 += 1;
      const why = !bearer ? 'no bearer token' : !issued ? 'unknown token' : issued.revoked ? 'the token was revoked' : 'the token expired';
      return send(res, 401, style === 'legacy' ? { error: { code: 'invalid_token', text: why } } : { status: 401, message: why, errorCode: 'invalid_token' }, { 'content-type': 'application/json', 'www-authenticate': `Bearer error="invalid_token", error_description="${why}"` });
    }
    if (!(req.headers.accept ?? '').split(',').some((type) => type.trim().split(';')[0] === V2_MEDIA_TYPE)) {
      return fail(res, 406, 'NOT_ACCEPTABLE', `this installation serves ${V2_MEDIA_TYPE} only`);
    }
    let body: Record<string, unknown> | undefined;
    if (req.method === 'POST' || req.method === 'PUT') {
      const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim();
      if (type !== V2_MEDIA_TYPE) return fail(res, 415, 'UNSUPPORTED_MEDIA_TYPE', `send ${V2_MEDIA_TYPE}`);
      try {
        const parsed: unknown = JSON.parse(raw);
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return fail(res, 400, 'INVALID_BODY', 'the body is a JSON object');
        body = parsed as Record<string, unknown>;
      } catch {
        return fail(res, 400, 'INVALID_BODY', 'the body is not JSON');
      }
    }
    const rest = path.slice(BASE.length);
    let match: RegExpExecArray | null;
    if (rest === '/customers') {
      if (req.method === 'GET') {
        const externalId = query.get('externalId');
        return send(res, 200, [...customers.values()].filter((c) => externalId === null || c.externalId === externalId));
      }
      if (req.method === 'POST') {
        const problem = customerProblem(body!);
        if (problem) return fail(res, 400, 'VALIDATION_FAILED', problem);
        if ([...customers.values()].some((c) => c.externalId === body!.externalId)) return fail(res, 409, 'DUPLICATE_EXTERNAL_ID', `a customer with externalId ${String(body!.externalId)} exists`);
        const id = String((nextCustomer += 1));
        const customer = { ...body!, id, createdAt: new Date(now()).toISOString() };
        customers.set(id, customer);
        return send(res, 201, customer, { location: `${BASE}/customers/${id}` });
      }
      return fail(res, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed here`);
    }
    if ((match = /^\/customers\/([^/]+)$/.exec(rest))) {
      const id = decodeURIComponent(match[1]!);
      const existing = customers.get(id);
      if (!existing) return fail(res, 404, 'CUSTOMER_NOT_FOUND', `no customer ${id}`);
      if (req.method === 'GET') return send(res, 200, existing);
      if (req.method === 'PUT') {
        const problem = customerProblem(body!);
        if (problem) return fail(res, 400, 'VALIDATION_FAILED', problem);
        const customer = { ...body!, id, createdAt: existing.createdAt, updatedAt: new Date(now()).toISOString() };
        customers.set(id, customer);
        return send(res, 200, customer);
      }
      if (req.method === 'DELETE') {
        customers.delete(id);
        return send(res, 204, undefined);
      }
      return fail(res, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed here`);
    }
    if ((match = /^\/orders\/([^/]+)\/statusnotes$/.exec(rest))) {
      const orderNumber = decodeURIComponent(match[1]!);
      if (req.method === 'GET') return send(res, 200, notes.filter((n) => n.orderNumber === orderNumber).map((n) => ({ id: n.id, ...n.body })));
      if (req.method !== 'POST') return fail(res, 405, 'METHOD_NOT_ALLOWED', `${req.method} is not allowed here`);
      const problem = noteProblem(body!);
      if (problem) return fail(res, 400, 'VALIDATION_FAILED', problem);
      const note: StatusNote = { id: randomUUID(), orderNumber, body: body!, receivedAt: now(), idempotencyKey: header(req, 'idempotency-key') };
      notes.push(note);
      return send(res, 201, { id: note.id, ...body! });
    }
    return fail(res, 404, 'NOT_FOUND', `no resource at ${path}`);
  };

  const server: Server = createServer((req, res) => {
    void readBody(req).then((buffer) => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const path = url.pathname;
      const accept = header(req, 'accept');
      res.on('finish', () => requests.push({ method: req.method ?? 'GET', path: `${path}${url.search}`, status: res.statusCode, accept }));
      const isToken = path === `${BASE}/token`;
      const at = state.faults.findIndex((fault) => fault.only === undefined || fault.only === (isToken ? 'token' : 'api'));
      if (at !== -1) {
        const [fault] = state.faults.splice(at, 1);
        if (fault!.kind === 'reset') return void req.socket.destroy();
        return fail(res, fault!.status, 'FAULT', `injected ${fault!.status}`, fault!.retryAfter === undefined ? {} : { 'retry-after': String(fault!.retryAfter) });
      }
      if (isToken) return req.method === 'POST' ? tokenEndpoint(req, res, buffer.toString('utf8')) : fail(res, 405, 'METHOD_NOT_ALLOWED', 'POST the token request');
      if (!path.startsWith(`${BASE}/`)) return fail(res, 404, 'NOT_FOUND', `no resource at ${path}`);
      return api(req, res, path, url.searchParams, buffer.toString('utf8'));
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    customers,
    notes,
    requests,
    stats,
    get faults() {
      return state.faults;
    },
    set faults(faults) {
      state.faults = faults;
    },
    expireTokens() {
      for (const issued of tokens.values()) issued.expiresAt = Math.min(issued.expiresAt, now());
    },
    revokeTokens() {
      for (const issued of tokens.values()) issued.revoked = true;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** This installation's customer: externalId (text) required; the rest texts when given. */
function customerProblem(body: Record<string, unknown>): string | undefined {
  if (typeof body.externalId !== 'string' || body.externalId === '') return 'externalId is required (text)';
  for (const key of ['email', 'firstName', 'lastName', 'phone', 'customerNumber', 'locale', 'store']) {
    if (body[key] !== undefined && body[key] !== null && typeof body[key] !== 'string') return `${key} must be text`;
  }
  return undefined;
}

/** A status note: a known kind and a text; changedAt, when given, ISO 8601 (as every novomind timestamp). */
function noteProblem(body: Record<string, unknown>): string | undefined {
  if (typeof body.kind !== 'string' || !(STATUS_NOTE_KINDS as readonly string[]).includes(body.kind)) return `kind must be one of ${STATUS_NOTE_KINDS.join(', ')}`;
  if (typeof body.text !== 'string' || body.text === '') return 'text is required';
  if (body.changedAt !== undefined && (typeof body.changedAt !== 'string' || Number.isNaN(Date.parse(body.changedAt)) || !/T\d{2}:\d{2}/.test(body.changedAt))) return 'changedAt must be an ISO 8601 date-time';
  return undefined;
}
