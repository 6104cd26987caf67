// Who may call ctbridge's agent-facing APIs (the support view, agent actions): clients that present an API key
// in X-Api-Key, configured by the key's SHA-256 digest so the configuration never holds a usable secret, each
// with a role. A role is a name with one section per feature (`support`, `actions`, …) saying what it may do
// there; each feature reads its own section and refuses what the role does not grant.
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';
import { supportRoleSchema, supportSettingsSchema } from '../support/settings.ts';
import { roleActionsSchema } from '../actions/config.ts';
import { JwksCache, bearerToken, defaultFetchJwks, verifyJwt } from '../ingest/auth.ts';

const NAME = /^[a-z0-9][a-z0-9_-]*$/;

export const apiKeyHashSchema = z
  .string()
  .regex(/^sha256:[0-9a-f]{64}$/, 'sha256: and 64 lower-case hex digits, as `ctbridge api-key generate` prints it (never the key itself)');

export const apiClientSchema = z.strictObject({
  name: z.string().regex(NAME, 'use lowercase letters, digits, - and _').describe('who calls: it appears in the audit log and in rate limits'),
  keyHash: apiKeyHashSchema.describe("the SHA-256 digest of the client's API key, e.g. ${NOVOMIND_AGENT_KEY_HASH}"),
  role: z.string().regex(NAME, 'use lowercase letters, digits, - and _').describe('one of api.roles'),
});

/** What a role may do, one optional section per feature. */
export const roleSchema = z.strictObject({
  description: z.string().optional(),
  support: supportRoleSchema.optional().describe('what the role sees in the support view (GET /v1/support/…); unset: nothing'),
  actions: roleActionsSchema.optional().describe('agent actions: what the role may do, its refund limits, whether it approves'),
});

/** OAuth2 bearer JWTs from the installation's identity provider, as an alternative to API keys. */
export const apiJwtSchema = z.strictObject({
  jwksUrl: z.url().describe("the identity provider's JWKS (RS256 keys)"),
  issuer: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).describe('the accepted `iss`'),
  audience: z.string().min(1).describe('the `aud` the tokens must be for'),
  roleClaim: z.string().min(1).default('role').describe('the claim naming the role (one of api.roles); a list of roles is refused as ambiguous'),
  subjectClaim: z.string().min(1).default('sub').describe('the claim naming the caller in the audit log'),
});

export const apiSchema = z
  .strictObject({
    clients: z.array(apiClientSchema).default([]).describe('API clients of the support view and agent actions'),
    roles: z.record(z.string().regex(NAME, 'use lowercase letters, digits, - and _'), roleSchema).default({}).describe('what each role may do, per feature'),
    support: supportSettingsSchema.optional().describe('the support view: cache, page size, rate limit per client, back-office links'),
    jwt: apiJwtSchema.optional().describe('accept bearer JWTs from an identity provider too'),
  })
  .superRefine((api, ctx) => {
    const names = new Set<string>();
    const hashes = new Set<string>();
    api.clients.forEach((client, index) => {
      if (names.has(client.name)) ctx.addIssue({ code: 'custom', path: ['clients', index, 'name'], message: `duplicate client name "${client.name}"` });
      if (hashes.has(client.keyHash)) ctx.addIssue({ code: 'custom', path: ['clients', index, 'keyHash'], message: 'another client has this key' });
      if (!(client.role in api.roles)) ctx.addIssue({ code: 'custom', path: ['clients', index, 'role'], message: `no role "${client.role}" in api.roles (${Object.keys(api.roles).join(', ') || 'none defined'})` });
      names.add(client.name);
      hashes.add(client.keyHash);
    });
  });

export type ApiConfig = z.infer<typeof apiSchema>;
export type RoleConfig = z.infer<typeof roleSchema>;

export const API_KEY_HEADER = 'x-api-key';

/** A new random API key (256 bits) and the digest to configure for it. */
export function generateApiKey(): { key: string; keyHash: string } {
  const key = `ctb_${randomBytes(32).toString('base64url')}`;
  return { key, keyHash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}

export interface ApiCaller {
  client: string;
  role: string;
  /** The role's sections, for the feature to read its own. */
  grants: RoleConfig;
}

export type Authentication = { ok: true; caller: ApiCaller } | { ok: false; status: 401; detail: string };

export interface ApiClientsOptions {
  /** Fetches the JWKS (tests serve their own); see ingest/auth.ts. */
  fetchJwks?: (url: string) => Promise<unknown>;
  now?: () => number;
}

export class ApiClients {
  // Looked up by digest: a key is high-entropy, so comparing digests leaks nothing usable about it.
  readonly #byDigest: Map<string, { name: string; role: string }>;
  readonly #roles: Record<string, RoleConfig>;
  readonly #jwt: { config: z.infer<typeof apiJwtSchema>; keys: JwksCache; now: () => number } | undefined;

  constructor(config: ApiConfig, options: ApiClientsOptions = {}) {
    this.#byDigest = new Map(config.clients.map((client) => [client.keyHash, { name: client.name, role: client.role }]));
    this.#roles = config.roles;
    const now = options.now ?? Date.now;
    if (config.jwt) this.#jwt = { config: config.jwt, keys: new JwksCache(config.jwt.jwksUrl, options.fetchJwks ?? defaultFetchJwks, now), now };
  }

  /** Whether bearer JWTs are accepted besides API keys (api.jwt is configured). */
  get acceptsJwt(): boolean {
    return this.#jwt !== undefined;
  }

  /**
   * The caller by API key (X-Api-Key) or, when api.jwt is configured, by a bearer JWT whose role claim names a
   * configured role; the client is then `jwt:<subject>`.
   */
  async identify(headers: IncomingHttpHeaders): Promise<Authentication> {
    if (headers[API_KEY_HEADER] !== undefined || !this.#jwt || headers.authorization === undefined) return this.authenticate(headers);
    const { config, keys, now } = this.#jwt;
    const bearer = bearerToken(headers);
    if (!bearer.ok) return { ok: false, status: 401, detail: bearer.reason };
    const verified = await verifyJwt(bearer.token, { issuers: typeof config.issuer === 'string' ? [config.issuer] : config.issuer, audience: config.audience }, keys, now);
    if (!verified.ok) return { ok: false, status: 401, detail: verified.reason };
    const role = verified.claims[config.roleClaim];
    const subject = verified.claims[config.subjectClaim];
    if (typeof role !== 'string') return { ok: false, status: 401, detail: `the token's ${config.roleClaim} claim does not name one role` };
    const grants = Object.hasOwn(this.#roles, role) ? this.#roles[role] : undefined;
    if (!grants) return { ok: false, status: 401, detail: `the token's role is not one of api.roles` };
    if (typeof subject !== 'string' || subject === '') return { ok: false, status: 401, detail: `the token has no ${config.subjectClaim} claim` };
    return { ok: true, caller: { client: `jwt:${subject}`, role, grants } };
  }

  authenticate(headers: IncomingHttpHeaders): Authentication {
    const presented = headers[API_KEY_HEADER];
    if (presented === undefined) return { ok: false, status: 401, detail: 'an API key is required in the X-Api-Key header' };
    if (Array.isArray(presented) || presented.length === 0) return { ok: false, status: 401, detail: 'one API key is required in the X-Api-Key header' };
    const client = this.#byDigest.get(hashApiKey(presented));
    const grants = client && this.#roles[client.role];
    if (!client || !grants) return { ok: false, status: 401, detail: 'the API key is not valid' };
    return { ok: true, caller: { client: client.name, role: client.role, grants } };
  }
}
