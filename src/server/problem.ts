// RFC 9457 problem details with stable `type` URNs, so clients can branch on the kind of error.
import { STATUS_CODES } from 'node:http';
import type { FastifyReply } from 'fastify';

export type ProblemKind =
  | 'unauthorized'
  | 'forbidden'
  | 'malformed-json'
  | 'empty-body'
  | 'invalid-parameter'
  | 'timeout'
  | 'headers-too-large'
  | 'payload-too-large'
  | 'too-many-items'
  | 'invalid-event'
  | 'rate-limited'
  | 'unsupported-media-type'
  | 'not-found'
  | 'conflict'
  | 'bad-request'
  | 'unavailable'
  | 'overloaded'
  | 'internal';

const TITLES: Record<ProblemKind, string> = {
  unauthorized: 'Authentication failed',
  forbidden: 'Not allowed',
  'malformed-json': 'Body is not valid JSON',
  'empty-body': 'Body is empty',
  'invalid-parameter': 'Invalid request parameter',
  timeout: 'Request not received in time',
  'headers-too-large': 'Request headers too large',
  'payload-too-large': 'Body too large',
  'too-many-items': 'Body holds too many items',
  'invalid-event': 'Event does not match its schema',
  'rate-limited': 'Too many requests',
  'unsupported-media-type': 'Unsupported media type',
  'not-found': 'Not found',
  conflict: 'Conflict',
  'bad-request': 'Bad request',
  unavailable: 'Service unavailable',
  overloaded: 'Too much ingest in flight',
  internal: 'Internal error',
};

export function problemType(kind: ProblemKind): string {
  return `urn:ctbridge:problem:${kind}`;
}

export function sendProblem(reply: FastifyReply, status: number, kind: ProblemKind, detail: string, extra: Record<string, unknown> = {}): FastifyReply {
  return reply
    .code(status)
    .type('application/problem+json')
    .send({ type: problemType(kind), title: TITLES[kind], status, detail, ...extra });
}

/** A problem+json answer written straight to a socket, for errors Node reports before there is a request to reply to. */
export function rawProblem(status: number, kind: ProblemKind, detail: string): string {
  const body = JSON.stringify({ type: problemType(kind), title: TITLES[kind], status, detail });
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? TITLES[kind]}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}
