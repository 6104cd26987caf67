// The load generator, run as its own process so that it never shares an event loop with what it measures. A
// deliberately small HTTP/1.1 client over keep-alive net sockets (pre-encoded requests, responses parsed just far
// enough to find the status and the end of the body), cheaper per request than node:http or fetch. Two modes:
// closed loop (N connections, each sends its next request when the previous one was answered) and open loop
// (requests sent on a fixed schedule whatever the answers; a late send counts from its scheduled time).
import { connect, type Socket } from 'node:net';
import { epochNow, serve } from './ipc.ts';
import { createdBodies } from './workload.ts';

export interface Target {
  port: number;
  path: string;
  headers: Record<string, string>;
}

export type BodySpec = { kind: 'created'; from: number; count: number; perRequest: number } | { kind: 'raw'; bodies: string[] };

export interface PrepareArgs {
  target: Target;
  bodies: BodySpec;
  /** Each request gets `X-Correlation-Id: {correlationPrefix}{index}`. */
  correlationPrefix: string;
}

export interface ClosedArgs {
  concurrency: number;
  /** Stop sending new requests after this long (the ones in flight are still awaited). */
  maxDurationMs: number;
}

export interface OpenArgs {
  ratePerSecond: number;
  maxConnections: number;
  /** After the last scheduled send, wait at most this long for answers; what is still open is abandoned. */
  maxWaitAfterMs: number;
}

export interface RunResult {
  requests: number;
  /** Messages in requests answered 2xx. */
  messagesAcked: number;
  /** Requests not answered 2xx (status or connection error). */
  failed: number;
  statuses: Record<string, number>;
  firstSendAt: number;
  lastAckAt: number;
  /** Per request, in prepared order: scheduled (open loop) or actual (closed loop) send time; NaN if not sent. */
  sendTimes: Float64Array;
  ackMsP50: number;
  ackMsP99: number;
  cpuMs: number;
  wallMs: number;
}

interface Prepared {
  requests: Buffer[];
  messages: number[];
}

let prepared: Prepared | undefined;
let target: Target | undefined;
// Building the bodies costs seconds; both systems and every run of a scenario post the same ones.
const bodyCache = new Map<string, Array<{ body: string; messages: number }>>();

function bodiesFor(spec: BodySpec): Array<{ body: string; messages: number }> {
  if (spec.kind === 'raw') return spec.bodies.map((body) => ({ body, messages: 1 }));
  const key = JSON.stringify(spec);
  const cached = bodyCache.get(key) ?? createdBodies(spec.from, spec.count, spec.perRequest);
  bodyCache.set(key, cached);
  return cached;
}

function prepare(args: PrepareArgs): { requests: number; messages: number } {
  const bodies = bodiesFor(args.bodies);
  const fixed = Object.entries({ host: `127.0.0.1:${args.target.port}`, 'content-type': 'application/json', ...args.target.headers })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  const requests = bodies.map(({ body }, index) => {
    const payload = Buffer.from(body);
    const head = `POST ${args.target.path} HTTP/1.1\r\n${fixed}x-correlation-id: ${args.correlationPrefix}${index}\r\ncontent-length: ${payload.length}\r\n\r\n`;
    return Buffer.concat([Buffer.from(head, 'latin1'), payload]);
  });
  prepared = { requests, messages: bodies.map((b) => b.messages) };
  target = args.target;
  return { requests: requests.length, messages: prepared.messages.reduce((a, b) => a + b, 0) };
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** One keep-alive connection answering one request at a time. */
class Connection {
  readonly #port: number;
  #socket: Socket;
  #buffer: Buffer = Buffer.alloc(0);
  #waiting: { resolve(status: number): void } | undefined;
  #broken = false;

  constructor(port: number) {
    this.#port = port;
    this.#socket = this.#open();
  }

  #open(): Socket {
    const socket = connect(this.#port, '127.0.0.1');
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    // A replaced socket's late events must not fail the request of its successor.
    socket.on('error', () => socket === this.#socket && this.#fail());
    socket.on('close', () => socket === this.#socket && this.#fail());
    this.#broken = false;
    this.#buffer = Buffer.alloc(0);
    return socket;
  }

  /** Resolves with the response status, or 0 when the connection failed. */
  send(request: Buffer): Promise<number> {
    if (this.#broken) this.#socket = this.#open();
    return new Promise((resolve) => {
      this.#waiting = { resolve };
      this.#socket.write(request);
    });
  }

  close(): void {
    this.#socket.destroy();
  }

  #fail(): void {
    this.#broken = true;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve(0);
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const end = this.#buffer.indexOf(HEADER_END);
    if (end < 0) return;
    const head = this.#buffer.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    let bodyLength = length ? Number(length[1]) : 0;
    if (!length && status !== 204 && status !== 304) {
      // Every server the bench talks to sends Content-Length; anything else is a bench bug worth seeing.
      if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) throw new Error('loadgen: chunked responses are not supported');
      bodyLength = 0;
    }
    const total = end + 4 + bodyLength;
    if (this.#buffer.length < total) return;
    this.#buffer = this.#buffer.subarray(total);
    if (/\r\nconnection:\s*close/i.test(head)) this.#broken = true;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve(status);
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function newResult(count: number): RunResult {
  return { requests: 0, messagesAcked: 0, failed: 0, statuses: {}, firstSendAt: Number.NaN, lastAckAt: Number.NaN, sendTimes: new Float64Array(count).fill(Number.NaN), ackMsP50: 0, ackMsP99: 0, cpuMs: 0, wallMs: 0 };
}

function record(result: RunResult, acks: number[], index: number, status: number, sentAt: number): void {
  const at = epochNow();
  result.requests += 1;
  result.statuses[String(status)] = (result.statuses[String(status)] ?? 0) + 1;
  if (status >= 200 && status < 300) result.messagesAcked += prepared!.messages[index]!;
  else result.failed += 1;
  result.lastAckAt = Number.isNaN(result.lastAckAt) ? at : Math.max(result.lastAckAt, at);
  acks.push(at - sentAt);
}

function finish(result: RunResult, acks: number[], cpu: NodeJS.CpuUsage, startedAt: number): RunResult {
  acks.sort((a, b) => a - b);
  result.ackMsP50 = percentile(acks, 50);
  result.ackMsP99 = percentile(acks, 99);
  const used = process.cpuUsage(cpu);
  result.cpuMs = (used.user + used.system) / 1000;
  result.wallMs = epochNow() - startedAt;
  return result;
}

async function closed(args: ClosedArgs): Promise<RunResult> {
  const { requests } = prepared!;
  const result = newResult(requests.length);
  const acks: number[] = [];
  const connections = Array.from({ length: args.concurrency }, () => new Connection(target!.port));
  const cpu = process.cpuUsage();
  const startedAt = epochNow();
  const deadline = startedAt + args.maxDurationMs;
  let next = 0;
  await Promise.all(
    connections.map(async (connection) => {
      while (next < requests.length && epochNow() < deadline) {
        const index = next++;
        const sentAt = epochNow();
        result.sendTimes[index] = sentAt;
        if (Number.isNaN(result.firstSendAt)) result.firstSendAt = sentAt;
        record(result, acks, index, await connection.send(requests[index]!), sentAt);
      }
    }),
  );
  for (const connection of connections) connection.close();
  return finish(result, acks, cpu, startedAt);
}

async function open(args: OpenArgs): Promise<RunResult> {
  const { requests } = prepared!;
  const result = newResult(requests.length);
  const acks: number[] = [];
  const idle: Connection[] = [];
  const all: Connection[] = [];
  const backlog: number[] = [];
  const inFlight = new Set<Promise<void>>();
  const cpu = process.cpuUsage();
  const startedAt = epochNow();
  const firstAt = startedAt + 50;
  const interval = 1000 / args.ratePerSecond;
  result.firstSendAt = firstAt;

  const dispatch = (index: number) => {
    let connection = idle.pop();
    if (!connection) {
      if (all.length >= args.maxConnections) {
        backlog.push(index);
        return;
      }
      connection = new Connection(target!.port);
      all.push(connection);
    }
    const run = (async (c: Connection, i: number) => {
      for (let current: number | undefined = i; current !== undefined; current = backlog.shift()) {
        const scheduled = result.sendTimes[current]!;
        record(result, acks, current, await c.send(requests[current]!), scheduled);
      }
      idle.push(c);
    })(connection, index);
    inFlight.add(run);
    void run.finally(() => inFlight.delete(run));
  };

  let index = 0;
  while (index < requests.length) {
    const now = epochNow();
    while (index < requests.length && firstAt + index * interval <= now) {
      // Latency counts from the scheduled time, so a send delayed by a busy client is not hidden.
      result.sendTimes[index] = firstAt + index * interval;
      dispatch(index);
      index += 1;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const giveUp = epochNow() + args.maxWaitAfterMs;
  while (inFlight.size > 0 && epochNow() < giveUp) {
    await Promise.race([Promise.all([...inFlight]), new Promise((resolve) => setTimeout(resolve, Math.max(1, giveUp - epochNow())))]);
  }
  backlog.length = 0;
  for (const connection of all) connection.close();
  return finish(result, acks, cpu, startedAt);
}

serve({ prepare, closed, open });
