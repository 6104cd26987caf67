// What every ingest authentication shares (auth.ts, sns-auth.ts): the two-step shape of a scheme, its result, and
// reading a header that must be there exactly once.

/** `retryable`: the credential could not be checked for now (a key or certificate fetch failed); the sender should retry. */
export type IngestAuthResult = { ok: true } | { ok: false; reason: string; retryable?: true };
export interface IngestAuthRequest {
  headers: Record<string, string | string[] | undefined>;
  rawBody: Buffer;
}

/**
 * An authentication scheme in two steps, so that a request without a credential is refused before its body is
 * read (and before the body takes any of the in-flight budget): `checkHeaders` checks all the headers can tell;
 * when `coversBody`, the credential is over the body (hmac, sns) and `checkBody` verifies it once the body is read.
 */
export interface IngestAuth {
  readonly coversBody: boolean;
  checkHeaders(headers: IngestAuthRequest['headers']): Promise<IngestAuthResult>;
  checkBody(request: IngestAuthRequest): Promise<IngestAuthResult>;
}

export function singleHeader(headers: IngestAuthRequest['headers'], name: string): { ok: true; value: string } | { ok: false; reason: string } {
  const lower = name.toLowerCase();
  let value = headers[lower];
  if (value === undefined) {
    const key = Object.keys(headers).find((k) => k.toLowerCase() === lower);
    value = key === undefined ? undefined : headers[key];
  }
  if (Array.isArray(value)) {
    if (value.length > 1) return fail(`multiple ${name} headers`);
    value = value[0];
  }
  if (value === undefined || value.trim() === '') return fail(`missing ${name} header`);
  return { ok: true, value };
}

export function fail(reason: string): { ok: false; reason: string } {
  return { ok: false, reason };
}
