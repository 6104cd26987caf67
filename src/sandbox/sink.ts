// A local HTTP receiver standing in for a destination (sandbox, tests, benchmark). It keeps what arrived, applies
// each Idempotency-Key once (like a well-behaved receiver), verifies the signature when given the secret, and
// can be told to misbehave: fail with a status, answer 429 with Retry-After, hang past the client's timeout, or
// hold a request open until the test says so. A GET of …/{recordType}/{id} answers the record as it holds it.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { readBody } from './http-body.ts';
import { listenLocally } from './local-server.ts';

export interface SinkRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: unknown;
  receivedAt: number;
}

/** One record or event as applied by the sink (array bodies are split into their items). */
export interface SinkItem {
  kind: 'record' | 'event' | 'merge' | 'unknown';
  idempotencyKey: string;
  correlationId: string;
  body: Record<string, unknown>;
}

export type Fault =
  | { kind: 'status'; status: number; retryAfterSeconds?: number; body?: string }
  | { kind: 'hang'; ms: number }
  /** Keeps the request open until `until` settles, then answers it as usual. */
  | { kind: 'hold'; until: Promise<unknown> }
  | { kind: 'reset' };

export interface Sink {
  url: string;
  /** Every request, in arrival order, including rejected ones. */
  requests: SinkRequest[];
  /** Items applied, in order, at most once per idempotency key. */
  applied: SinkItem[];
  /** How often each idempotency key arrived (retries and duplicates included). */
  deliveries: Map<string, number>;
  /** Records as the sink holds them now: fields merged per `recordType/id`, deleted ones removed. */
  records: Map<string, Record<string, unknown>>;
  /** Highest version applied per `recordType/id`, and every version in order of application. */
  versions: Map<string, number[]>;
  /** The next answers: each request takes the first queued fault, or decides with `faultFor`. */
  faults: Fault[];
  faultFor: ((request: SinkRequest) => Fault | undefined) | undefined;
  signatureFailures: number;
  close(): Promise<void>;
}

export async function startSink(options: { port?: number; signingSecret?: string; host?: string } = {}): Promise<Sink> {
  const sink: Omit<Sink, 'url' | 'close'> = {
    requests: [],
    applied: [],
    deliveries: new Map(),
    records: new Map(),
    versions: new Map(),
    faults: [],
    faultFor: undefined,
    signatureFailures: 0,
  };

  const server: Server = createServer((req, res) => {
    void readBody(req).then((raw) => {
      let body: unknown;
      try {
        body = raw.length > 0 ? JSON.parse(raw.toString('utf8')) : undefined;
      } catch {
        body = raw.toString('utf8');
      }
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]));
      const request: SinkRequest = { method: req.method ?? 'GET', path: req.url ?? '/', headers, body, receivedAt: Date.now() };
      sink.requests.push(request);

      const fault = sink.faults.shift() ?? sink.faultFor?.(request);
      if (fault?.kind === 'reset') {
        req.socket.destroy();
        return;
      }
      if (fault?.kind === 'hang') {
        setTimeout(() => {
          if (!res.writableEnded) res.writeHead(504).end();
        }, fault.ms).unref();
        return;
      }
      if (fault?.kind === 'status') {
        const extra: Record<string, string> = fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {};
        res.writeHead(fault.status, { 'content-type': 'application/json', ...extra }).end(fault.body ?? JSON.stringify({ error: `injected ${fault.status}` }));
        return;
      }
      // A receiver that can say what it holds (the http destination's `read` URL): GET …/{recordType}/{id}.
      if (request.method === 'GET') {
        const held = heldRecord(sink, request.path);
        if (held === undefined) res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'no such record' }));
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(held));
        return;
      }
      const answer = () => {
        if (options.signingSecret && !validSignature(raw, headers['x-ctbridge-signature'], options.signingSecret)) {
          sink.signatureFailures += 1;
          res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'bad signature' }));
          return;
        }
        apply(sink, request);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      };
      if (fault?.kind === 'hold') void fault.until.then(answer, answer);
      else answer();
    });
  });
  server.keepAliveTimeout = 30_000;
  return Object.assign(sink, await listenLocally(server, options.port, options.host));
}

function headerList(header: string | undefined): string[] {
  return (header ?? '').split(',').map((value) => {
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  });
}

function apply(sink: Omit<Sink, 'url' | 'close'>, request: SinkRequest): void {
  // Each value percent-encoded, as ctbridge sends them (destinations/http).
  const keys = headerList(request.headers['idempotency-key']);
  const correlationIds = headerList(request.headers['x-correlation-id']);
  const bodies = request.method === 'DELETE' && request.body === undefined ? [deleteBody(request.path)] : Array.isArray(request.body) ? (request.body as unknown[]) : [request.body];
  bodies.forEach((raw, index) => {
    const body = (raw ?? {}) as Record<string, unknown>;
    const key = (typeof body.idempotencyKey === 'string' ? body.idempotencyKey : keys[index]) ?? '';
    sink.deliveries.set(key, (sink.deliveries.get(key) ?? 0) + 1);
    if ((sink.deliveries.get(key) ?? 0) > 1) return;
    const kind = body.kind === 'record' || body.kind === 'event' || body.kind === 'merge' ? body.kind : 'unknown';
    sink.applied.push({ kind, idempotencyKey: key, correlationId: correlationIds[index] ?? correlationIds[0] ?? '', body });
    if (kind === 'merge' || (kind !== 'record' && request.method !== 'DELETE')) return;
    const id = `${String(body.recordType)}/${String(body.id)}`;
    if (body.operation === 'delete') sink.records.delete(id);
    else sink.records.set(id, { ...sink.records.get(id), ...(body.fields as Record<string, unknown>) });
    const versions = sink.versions.get(id) ?? [];
    versions.push(Number(body.version));
    sink.versions.set(id, versions);
  });
}

/** The record a GET's path (…/{recordType}/{id}, as DELETE names it) is about, as the sink holds it now. */
function heldRecord(sink: Omit<Sink, 'url' | 'close'>, path: string): { recordType: string; id: string; fields: Record<string, unknown> } | undefined {
  const [recordType, id] = path.split('?')[0]!.split('/').filter(Boolean).slice(-2).map(decodeURIComponent);
  const fields = sink.records.get(`${recordType}/${id}`);
  return fields === undefined || recordType === undefined || id === undefined ? undefined : { recordType, id, fields };
}

/** DELETE /{recordType}/{id} carries no body; the sink rebuilds what it means from the path. */
function deleteBody(path: string): Record<string, unknown> {
  const [recordType, id] = path.split('/').filter(Boolean).slice(-2).map(decodeURIComponent);
  return { kind: 'record', recordType, id, operation: 'delete', version: Number.NaN };
}

function validSignature(raw: Buffer, header: string | undefined, secret: string): boolean {
  if (!header?.startsWith('sha256=')) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(raw).digest('hex'));
  const given = Buffer.from(header.slice(7));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

