// RFC 9457 problem details with stable `type` URNs, so clients can branch on the kind of error.
import type { FastifyReply } from 'fastify';

export type ProblemKind =
  | 'unauthorized'
  | 'forbidden'
  | 'malformed-json'
  | 'payload-too-large'
  | 'too-many-items'
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
  'payload-too-large': 'Body too large',
  'too-many-items': 'Body holds too many items',
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
