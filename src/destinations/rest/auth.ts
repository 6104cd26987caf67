// Authentication of the REST destination's calls. Static kinds (bearer, basic, API-key header) are a header.
// OAuth2 (RFC 6749: 4.4 client credentials, 4.3 password grant) fetches an access token from the token endpoint,
// keeps it until `refreshBeforeSeconds` before it expires (by the injected clock), uses the refresh token when the
// endpoint gave one (6), and fetches one token at a time however many calls wait for it. A call answered 401 drops
// the token (revoked, or expired before its time) so the engine's retry of that item gets a new one; the connector
// itself never retries. A token endpoint that refuses the credentials (400 invalid_grant / invalid_client, 401)
// is a PermanentError that says so; its other failures are classified like any answer.
import { PermanentError, errorForAnswer, type DestinationFetch } from '../kit/index.ts';
import type { OAuth2Auth, RestAuth } from './settings.ts';

export interface Authenticator {
  /** The Authorization (or API-key) header for the next call. */
  headers(): Promise<Record<string, string>>;
  /** The destination answered 401 with these headers: forget them (a new token for the next call). */
  refused(sent: Record<string, string>): void;
  /** A token of this kind can be replaced: a 401 is worth a retry. */
  readonly renewable: boolean;
}

export function createAuthenticator(auth: RestAuth | undefined, baseUrl: string, fetch: DestinationFetch, now: () => number): Authenticator {
  if (auth === undefined) return staticHeaders({});
  if ('bearer' in auth) return staticHeaders({ authorization: `Bearer ${auth.bearer}` });
  if ('basic' in auth) return staticHeaders({ authorization: basic(auth.basic.username, auth.basic.password) });
  if ('apiKey' in auth) return staticHeaders({ [auth.apiKey.header.toLowerCase()]: auth.apiKey.value });
  return oauth2(auth.oauth2, baseUrl, fetch, now);
}

function staticHeaders(headers: Record<string, string>): Authenticator {
  return { headers: () => Promise.resolve(headers), refused: () => undefined, renewable: false };
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

interface Token {
  accessToken: string;
  /** ms since epoch after which it is not used (its expiry less refreshBeforeSeconds); Infinity when not said. */
  useUntil: number;
  refreshToken: string | undefined;
}

function oauth2(settings: OAuth2Auth, baseUrl: string, fetch: DestinationFetch, now: () => number): Authenticator {
  const tokenUrl = /^https?:\/\//.test(settings.tokenUrl) ? settings.tokenUrl : `${baseUrl.replace(/\/+$/, '')}${settings.tokenUrl.startsWith('/') ? '' : '/'}${settings.tokenUrl}`;
  let token: Token | undefined;
  let pending: Promise<Token> | undefined;

  const request = async (form: Record<string, string>): Promise<Token> => {
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', 'user-agent': 'ctbridge' };
    const body = new URLSearchParams(form);
    if (settings.clientAuthentication === 'basic') headers.authorization = basic(encodeURIComponent(settings.clientId), encodeURIComponent(settings.clientSecret ?? ''));
    else {
      body.set('client_id', settings.clientId);
      if (settings.clientSecret !== undefined) body.set('client_secret', settings.clientSecret);
    }
    if (settings.scope !== undefined) body.set('scope', settings.scope);
    const answer = await fetch(tokenUrl, { method: 'POST', headers, body: body.toString() });
    const text = await answer.text();
    let json: Record<string, unknown> = {};
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed !== null && typeof parsed === 'object') json = parsed as Record<string, unknown>;
    } catch {
      // not JSON: said below
    }
    if (answer.status >= 400) {
      // RFC 6749 5.2: the error code and its description; never the request (it holds the credentials).
      const code = typeof json.error === 'string' ? json.error : undefined;
      const description = typeof json.error_description === 'string' ? `: ${json.error_description.slice(0, 200)}` : '';
      if (answer.status === 401 || code === 'invalid_grant' || code === 'invalid_client' || code === 'unauthorized_client') {
        throw new PermanentError(`the token endpoint refused the credentials (${answer.status}${code ? ` ${code}` : ''}${description}); replace them and replay`, { status: answer.status });
      }
      throw errorForAnswer(answer.status, answer.headers, `the token endpoint answered ${answer.status}${code ? ` ${code}` : ''}${description}`, fetch.options, now())!;
    }
    if (typeof json.access_token !== 'string' || json.access_token === '') throw new PermanentError(`the token endpoint answered ${answer.status} without an access_token`, { status: answer.status });
    const expiresIn = typeof json.expires_in === 'number' ? json.expires_in : typeof json.expires_in === 'string' ? Number(json.expires_in) : Number.NaN;
    return {
      accessToken: json.access_token,
      useUntil: Number.isFinite(expiresIn) ? now() + Math.max(0, expiresIn - settings.refreshBeforeSeconds) * 1000 : Number.POSITIVE_INFINITY,
      refreshToken: typeof json.refresh_token === 'string' ? json.refresh_token : undefined,
    };
  };

  const grant = (): Record<string, string> =>
    settings.grant === 'password' ? { grant_type: 'password', username: settings.username!, password: settings.password! } : { grant_type: 'client_credentials' };

  const fresh = async (previous: Token | undefined): Promise<Token> => {
    if (previous?.refreshToken) {
      try {
        return await request({ grant_type: 'refresh_token', refresh_token: previous.refreshToken });
      } catch (error) {
        // A refused refresh token (expired, revoked) is not the end: the grant itself gives a new one.
        if (!(error instanceof PermanentError)) throw error;
      }
    }
    return request(grant());
  };

  return {
    renewable: true,
    async headers() {
      if (token === undefined || now() >= token.useUntil) {
        const previous = token;
        token = undefined;
        pending ??= fresh(previous).finally(() => (pending = undefined));
        token = await pending;
      }
      return { authorization: `Bearer ${token.accessToken}` };
    },
    refused(sent) {
      // Only the token that was refused: another call may already have replaced it.
      if (token !== undefined && sent.authorization === `Bearer ${token.accessToken}`) token = { ...token, useUntil: 0 };
    },
  };
}
