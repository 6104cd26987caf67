// Who may call ctbridge's agent-facing APIs (the support view, agent actions): clients that present an API key
// in X-Api-Key, configured by the key's SHA-256 digest so the configuration never holds a usable secret, each
// with a role. A role is a name with one section per feature (`support`, `actions`, …) saying what it may do
// there; each feature reads its own section and refuses what the role does not grant.
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';
import { supportRoleSchema, supportSettingsSchema } from '../support/settings.ts';

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
});

export const apiSchema = z
  .strictObject({
    clients: z.array(apiClientSchema).default([]).describe('API clients of the support view and agent actions'),
    roles: z.record(z.string().regex(NAME, 'use lowercase letters, digits, - and _'), roleSchema).default({}).describe('what each role may do, per feature'),
    support: supportSettingsSchema.optional().describe('the support view: cache, page size, rate limit per client, back-office links'),
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

export class ApiClients {
  // Looked up by digest: a key is high-entropy, so comparing digests leaks nothing usable about it.
  readonly #byDigest: Map<string, { name: string; role: string }>;
  readonly #roles: Record<string, RoleConfig>;

  constructor(config: ApiConfig) {
    this.#byDigest = new Map(config.clients.map((client) => [client.keyHash, { name: client.name, role: client.role }]));
    this.#roles = config.roles;
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
