// The process logger: pino JSON lines, with secrets and personal data redacted by path wherever they could
// appear in a log object, and the free text that quotes what was received (an error's message and stack, a
// quarantine `reason`, a `lastError`) passed through redactText. Message-level lines carry `correlationId` (added
// by the code that logs them).
import pino, { type DestinationStream, type Logger } from 'pino';
import { redactText } from './redact.ts';

const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers["x-ctbridge-signature"]',
  'headers.authorization',
  '*.clientSecret',
  '*.token',
  '*.secret',
  '*.password',
  '*.email',
  '*.customerEmail',
  '*.firstName',
  '*.lastName',
  '*.phone',
  '*.mobile',
  '*.phoneNumber',
  '*.streetName',
  '*.dateOfBirth',
];

/** Fields of a log object that hold free text about a payload. */
const TEXT_FIELDS = ['reason', 'lastError', 'error'] as const;

function redactErr(error: unknown): unknown {
  const serialized = pino.stdSerializers.err(error as Error) as unknown as Record<string, unknown>;
  if (serialized === null || typeof serialized !== 'object') return serialized;
  for (const key of ['message', 'stack'] as const) if (typeof serialized[key] === 'string') serialized[key] = redactText(serialized[key]);
  return serialized;
}

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.CTBRIDGE_LOG_LEVEL ?? 'info',
      base: { service: 'ctbridge' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: { err: redactErr },
      formatters: {
        log(object) {
          let out = object;
          for (const key of TEXT_FIELDS) {
            const value = object[key];
            // A copy: the object is the caller's.
            if (typeof value === 'string') out = { ...out, [key]: redactText(value) };
          }
          return out;
        },
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
}
