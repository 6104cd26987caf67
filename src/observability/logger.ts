// The process logger: pino JSON lines, with secrets and personal data redacted by path wherever they could
// appear in a log object. Message-level lines carry `correlationId` (added by the code that logs them).
import pino, { type DestinationStream, type Logger } from 'pino';

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
  '*.streetName',
  '*.dateOfBirth',
];

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.CTBRIDGE_LOG_LEVEL ?? 'info',
      base: { service: 'ctbridge' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination,
  );
}
