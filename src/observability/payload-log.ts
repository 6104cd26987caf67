// The payload log's recorder: what a destination call sent and got back, kept for tracing (`payloadLog: {
// enabled, retentionDays }` per destination) with the correlation id and the record or event it was made for.
// Before anything is written:
// - secrets go: no request header is kept at all (they carry the credentials); in the bodies, values under names
//   of credentials (password, client_secret, access_token, refresh_token, api keys, authorization…) and any
//   occurrence of a secret of the destination's own settings become `[secret]`;
// - personal data is treated as the destination's PII policy lets it leave, never in clear: a class it drops is
//   dropped, every other class (by the names of the fields that hold it, and e-mail addresses and international
//   phone numbers wherever they are — pii/inner.ts) masked, also where the policy passes it as it is, since
//   ctbridge's own rows keep no raw personal data; card numbers and IBANs are masked wherever they are;
// - the URL loses its credentials and query values (redactUrl) and personal data in its path.
// A body over MAX_BODY characters is cut (the cut is said). A failure to write is logged, never the call's failure.
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { PayloadExchange } from '../destinations/kit/payload-context.ts';
import type { CompiledField } from '../mapping/compiled-field.ts';
import { PII_CLASSES, type PiiPolicy } from '../pii/classes.ts';
import { innerRules, scanningInner } from '../pii/inner.ts';
import { maskPaymentData } from '../pii/payment-data.ts';
import type { Database } from '../store/schema.ts';
import { insertPayloadRows } from '../store/payload-log.ts';
import { redactUrl } from './redact.ts';

export const SECRET = '[secret]';
const MAX_BODY = 64 * 1024;
/** Names under which a value is a credential, wherever they are (lower-cased, without - and _). */
const SECRET_NAME = /password|passwd|secret|token|authorization|apikey|assertion|credential|username|privatekey|signature/;
/** Names SECRET_NAME would take that say how, not what authenticates. */
const NOT_SECRET = new Set(['tokentype', 'tokenurl', 'granttype']);
const isSecretName = (key: string) => {
  const name = key.toLowerCase().replace(/[-_]/g, '');
  return SECRET_NAME.test(name) && !NOT_SECRET.has(name);
};
const MAX_DEPTH = 64;

export interface PayloadRecorderOptions {
  db: Kysely<Database>;
  destination: string;
  policy: PiiPolicy;
  /** The destination's settings: every secret in them is kept out of the log, wherever it turns up. */
  settings: Record<string, unknown>;
  logger: Logger;
  now?: () => number;
}

export type PayloadTreatment = (text: string | undefined, contentType?: string) => string | null;

/** What a body becomes in the log (see above); exported for the tests and `mapping preview`-like tools. */
export function payloadTreatment(policy: PiiPolicy, settings: Record<string, unknown>): { body: PayloadTreatment; url: (url: string) => string } {
  const secrets = secretValues(settings).sort((a, b) => b.length - a.length);
  const logPolicy: PiiPolicy = Object.fromEntries(PII_CLASSES.filter((piiClass) => piiClass !== 'payment').map((piiClass) => [piiClass, policy[piiClass] === 'drop' ? 'drop' : 'mask']));
  const rules = innerRules(logPolicy, {})!;
  const identity: CompiledField = { read: (source) => source, async: false, usesContext: false, references: [], subjectReferences: [], unexpandedReferences: [], readsOrders: false, sourceNames: [], sourceLeaves: [], transforms: [] };
  const scanner = scanningInner('payload', identity, rules);
  const personal = (value: unknown): unknown => scanner.read(value, {});
  const scrub = (text: string) => {
    let out = text;
    for (const secret of secrets) out = out.split(secret).join(SECRET);
    return maskPaymentData(out);
  };
  const unsecret = (value: unknown, depth: number): unknown => {
    if (typeof value === 'string') return scrub(value);
    if (value === null || typeof value !== 'object') return value;
    if (depth > MAX_DEPTH) return SECRET;
    if (Array.isArray(value)) return value.map((item) => unsecret(item, depth + 1));
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([key, item]) => [scrub(key), isSecretName(key) && item !== null && item !== '' ? SECRET : unsecret(item, depth + 1)]));
  };
  const body: PayloadTreatment = (text, contentType) => {
    if (text === undefined || text === '') return null;
    const cut = text.length > MAX_BODY;
    const kept = cut ? text.slice(0, MAX_BODY) : text;
    const tail = cut ? `… [${text.length - MAX_BODY} more characters not kept]` : '';
    let parsed: unknown;
    let parsedOk = false;
    if (!cut) {
      try {
        parsed = JSON.parse(kept);
        parsedOk = true;
      } catch {
        // form data or text: below
      }
    }
    if (!parsedOk && (contentType ?? '').startsWith('application/x-www-form-urlencoded')) {
      parsed = Object.fromEntries(new URLSearchParams(kept));
      parsedOk = true;
    }
    if (parsedOk) return JSON.stringify(personal(unsecret(parsed, 0))) ?? null;
    return `${String(personal(scrub(kept)))}${tail}`;
  };
  return { body, url: (url) => String(personal(scrub(redactUrl(url)))) };
}

export function createPayloadRecorder(options: PayloadRecorderOptions): (exchange: PayloadExchange) => Promise<void> {
  const treat = payloadTreatment(options.policy, options.settings);
  return async (exchange) => {
    try {
      const common = {
        destination: options.destination,
        at: exchange.at,
        method: exchange.method,
        url: treat.url(exchange.url),
        status: exchange.status ?? null,
        duration_ms: Math.max(0, Math.round(exchange.durationMs)),
        request_body: treat.body(exchange.requestBody, exchange.requestType),
        response_body: treat.body(exchange.responseBody, exchange.responseType),
        error: exchange.error === undefined ? null : String(treat.body(exchange.error, 'text/plain')),
      };
      const subjects = exchange.subjects.length > 0 ? exchange.subjects : [undefined];
      await insertPayloadRows(
        options.db,
        subjects.map((subject) => ({ ...common, correlation_id: subject?.correlationId ?? null, kind: subject?.kind ?? null, item_type: subject?.type ?? null, resource_id: subject?.resourceId ?? null })),
      );
    } catch (error) {
      options.logger.warn({ err: error }, 'a destination call could not be written to the payload log');
    }
  };
}

/** Texts in the settings that are credentials: under names of credentials, and everything under `auth` but its plain settings. */
function secretValues(settings: Record<string, unknown>): string[] {
  const out = new Set<string>();
  // Settings that name where or how, not what authenticates (a user name is kept out all the same: SECRET_NAME).
  const PLAIN = new Set(['tokenurl', 'grant', 'clientid', 'clientauthentication', 'header', 'scope', 'refreshbeforeseconds']);
  const walk = (value: unknown, key: string, inAuth: boolean, depth: number) => {
    if (depth > 16) return;
    const name = key.toLowerCase().replace(/[-_]/g, '');
    if (typeof value === 'string') {
      if (value.length >= 6 && !PLAIN.has(name) && (inAuth || SECRET_NAME.test(name))) out.add(value);
      return;
    }
    if (value === null || typeof value !== 'object') return;
    for (const [inner, item] of Object.entries(value as Record<string, unknown>)) walk(item, inner, inAuth || name === 'auth', depth + 1);
  };
  walk(settings, '', false, 0);
  return [...out];
}
