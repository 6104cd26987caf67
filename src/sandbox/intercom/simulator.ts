// A local Intercom (REST API 2.14) as strict as the real one, for the tests, the sandbox and the benchmark.
// A local Intercom (REST API 2.14) as strict as the real one, for the tests, the sandbox and the benchmark.
// Every request is checked against the official OpenAPI description (spec/intercom, vendored with its
// provenance): a bearer token is required, and the Intercom-Version header is optional (without it the app's
// version applies); an unknown parameter, a wrong type or a missing required one is a 400 with Intercom's error
// list (event metadata values as the operation's description types them, not as its schema does). The workspace
// (workspace.ts) keeps contacts, data attributes, events, tags and companies with Intercom's rules. Calls are rate
// limited in 10-second windows with the real headers and 429 body, faults can be injected, and every response is
// checked against the description too (a mismatch is a simulator bug, answered 500 and listed in `bugs`).
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { loadOpenApi, type OpenApi, type Operation } from '../openapi.ts';
import { SIM_ADMIN, Workspace, WorkspaceError, type SimAttribute, type SimCompany, type SimContact, type SimNote } from './workspace.ts';
import { readBody } from '../http-body.ts';
import { listenLocally } from '../local-server.ts';

export const INTERCOM_SPEC_PATH = fileURLToPath(new URL('../../../spec/intercom/api.intercom.io.2.14.yaml', import.meta.url));
export const INTERCOM_VERSION = '2.14';

export type IntercomFault = { kind: 'status'; status: number } | { kind: 'hang'; ms: number } | { kind: 'reset' };

export interface IntercomSimulatorOptions {
  token: string;
  /** How long a new contact stays invisible to search (Intercom's index lags minutes behind). */
  searchLagMs?: number;
  /** Calls allowed per minute, spread over 10-second windows as Intercom does (default 10,000). */
  limitPerMinute?: number;
  /**
   * The API version set in the app's settings, which applies to a request without an Intercom-Version header
   * (default 2.14, the one version this simulator serves).
   */
  appVersion?: string;
  port?: number;
  now?: () => number;
  specPath?: string;
}

export interface IntercomSimulator {
  url: string;
  workspace: Workspace;
  /** The accepted token; change it to revoke the old one. */
  token: string;
  /** The next answers: each request takes the first queued fault, or decides with faultFor. */
  faults: IntercomFault[];
  faultFor: ((method: string, path: string) => IntercomFault | undefined) | undefined;
  /** Calls received (all of them), answered 429, and answered 400 for an invalid request; the last valid body per operation. */
  stats: { calls: number; rateLimited: number; invalid: number; byOperation: Map<string, number>; lastBody: Map<string, unknown> };
  /** Responses the simulator produced that the description does not allow: must stay empty. */
  bugs: string[];
  close(): Promise<void>;
}

const WINDOW_MS = 10_000;

let cachedSpec: { path: string; api: OpenApi } | undefined;
function spec(path: string): OpenApi {
  if (cachedSpec?.path !== path) cachedSpec = { path, api: loadOpenApi(path) };
  return cachedSpec.api;
}

export async function startIntercomSimulator(options: IntercomSimulatorOptions): Promise<IntercomSimulator> {
  const now = options.now ?? Date.now;
  const api = spec(options.specPath ?? INTERCOM_SPEC_PATH);
  const workspace = new Workspace({ searchLagMs: options.searchLagMs ?? 0, now });
  const limitPerMinute = options.limitPerMinute ?? 10_000;
  // Intercom's own example rounds: 1000 a minute is 167 per window.
  const perWindow = Math.max(1, Math.round(limitPerMinute / 6));
  const appVersion = options.appVersion ?? INTERCOM_VERSION;
  const knownVersions = new Set((api.schema('intercom_version').enum as string[] | undefined) ?? []);
  let window = { start: 0, used: 0 };

  const sim: Omit<IntercomSimulator, 'url' | 'close'> = {
    workspace,
    token: options.token,
    faults: [],
    faultFor: undefined,
    stats: { calls: 0, rateLimited: 0, invalid: 0, byOperation: new Map(), lastBody: new Map() },
    bugs: [],
  };

  const server: Server = createServer((req, res) => {
    void readBody(req).then((raw) => handle(req, res, raw));
  });

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(body === undefined ? '' : JSON.stringify(body));
  }

  const errorBody = (errors: Array<{ code: string; message: string; field?: string }>) => ({ type: 'error.list', request_id: randomUUID(), errors });

  function handle(req: IncomingMessage, res: ServerResponse, raw: Buffer): void {
    sim.stats.calls += 1;
    const url = new URL(req.url ?? '/', 'http://simulator');
    const method = req.method ?? 'GET';
    if (url.pathname === '/__simulator/state') return send(res, 200, snapshot());

    const fault = sim.faults.shift() ?? sim.faultFor?.(method, url.pathname);
    if (fault?.kind === 'reset') return void req.socket.destroy();
    if (fault?.kind === 'hang') {
      setTimeout(() => res.writableEnded || send(res, 504, errorBody([{ code: 'service_unavailable', message: 'Gateway Timeout' }])), fault.ms).unref();
      return;
    }
    if (fault?.kind === 'status') return send(res, fault.status, errorBody([{ code: fault.status >= 500 ? 'server_error' : 'client_error', message: `injected ${fault.status}` }]));

    if (req.headers.authorization !== `Bearer ${sim.token}`) return send(res, 401, errorBody([{ code: 'unauthorized', message: 'Access Token Invalid' }]));
    // Intercom-Version is optional: "By default, it's equal to the version set in the app package" (the
    // description's intercom_version schema; https://developers.intercom.com/building-apps/docs/update-your-api-version).
    // A version Intercom does not know is a 400 intercom_version_invalid, "The requested version could not be
    // found" (Intercom's answer as recorded in airbytehq/airbyte's source-intercom integration tests). This
    // simulator serves 2.14 alone, and says so for another version Intercom has.
    const header = req.headers['intercom-version'];
    const version = typeof header === 'string' ? header : appVersion;
    if (version !== INTERCOM_VERSION) {
      const message = knownVersions.has(version) ? `Requested version ${version} is not served by this simulator (it implements ${INTERCOM_VERSION})` : 'The requested version could not be found';
      return send(res, 400, errorBody([{ code: 'intercom_version_invalid', message }]));
    }

    // Rate limit: a budget per 10-second window, announced in every authenticated answer. Since 2.17 Intercom
    // documents the headers as the window's: X-RateLimit-Limit is the window's allowance (a limit of 1000 a minute
    // is 167 per 10-second window), X-RateLimit-Remaining what is left of it, X-RateLimit-Reset the Unix time the
    // window ends; an answer without valid credentials has none. Over the allowance: 429 with the error code
    // rate_limit_exceeded and a message such as "Exceeded rate limit of 167 in 10_seconds"
    // (https://developers.intercom.com/docs/references/2.17/rest-api/errors/rate-limiting).
    const at = now();
    if (at - window.start >= WINDOW_MS) window = { start: at - (at % WINDOW_MS), used: 0 };
    const reset = String(Math.ceil((window.start + WINDOW_MS) / 1000));
    if (window.used >= perWindow) {
      sim.stats.rateLimited += 1;
      return send(res, 429, errorBody([{ code: 'rate_limit_exceeded', message: `Exceeded rate limit of ${perWindow} in 10_seconds` }]), { 'x-ratelimit-limit': String(perWindow), 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': reset });
    }
    window.used += 1;
    const limitHeaders = { 'x-ratelimit-limit': String(perWindow), 'x-ratelimit-remaining': String(perWindow - window.used), 'x-ratelimit-reset': reset };

    const found = api.find(method, url.pathname);
    if (!found) return send(res, 404, errorBody([{ code: 'not_found', message: `Resource Not Found: ${method} ${url.pathname}` }]), limitHeaders);
    const { operation, params } = found;
    sim.stats.byOperation.set(operation.operationId, (sim.stats.byOperation.get(operation.operationId) ?? 0) + 1);

    let body: unknown;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        sim.stats.invalid += 1;
        return send(res, 400, errorBody([{ code: 'parameter_invalid', message: 'The request body is not valid JSON' }]), limitHeaders);
      }
    }
    const requestSchema = requestSchemaOf(operation);
    if (requestSchema) {
      const problems = api.check(requestSchema, body ?? {});
      if (problems.length > 0) {
        sim.stats.invalid += 1;
        return send(res, 400, errorBody(problems.map((p) => ({ code: 'parameter_invalid', message: p.message, ...(p.field && { field: p.field }) }))), limitHeaders);
      }
    }

    sim.stats.lastBody.set(operation.operationId, body);
    let status: number;
    let result: unknown;
    try {
      [status, result] = dispatch(operation, params, (body ?? {}) as Record<string, unknown>, url.searchParams);
    } catch (error) {
      if (!(error instanceof WorkspaceError)) throw error;
      return send(res, error.status, errorBody([{ code: error.code, message: error.message }]), limitHeaders);
    }
    const schema = operation.responses[String(status)];
    const problems = schema ? api.check(schema, result) : [];
    if (problems.length > 0) {
      sim.bugs.push(`${operation.operationId} ${status}: ${problems.map((p) => p.message).join('; ')}`);
      return send(res, 500, errorBody([{ code: 'server_error', message: 'the simulator produced a response its description does not allow' }]), limitHeaders);
    }
    send(res, status, result, limitHeaders);
  }

  /**
   * The schema a request body is checked against: the description's, except where its own text says otherwise.
   * createDataEvent's schema types every metadata value as a string, but the operation's description documents
   * numbers, dates, rich links { url, value } and monetary amounts { amount, currency } as metadata ("Submit a
   * data event", the table of types) and so does its Event Metadata Types page: the values are checked by the
   * workspace (eventMetadataType), the rest of the body against the schema.
   */
  function requestSchemaOf(operation: Operation): Record<string, unknown> | undefined {
    const schema = operation.requestSchema;
    if (operation.operationId !== 'createDataEvent' || !schema) return schema;
    const properties = schema.properties as Record<string, Record<string, unknown>>;
    return { ...schema, properties: { ...properties, metadata: { ...properties.metadata, additionalProperties: {} } } };
  }

  function dispatch(operation: Operation, params: Record<string, string>, body: Record<string, unknown>, query: URLSearchParams): [number, unknown] {
    switch (operation.operationId) {
      case 'CreateContact':
        return [200, contactJson(workspace.createContact(body))];
      case 'UpdateContact':
        return [200, contactJson(workspace.updateContact(params.contact_id!, body))];
      case 'ShowContact':
        return [200, contactJson(workspace.contact(params.contact_id!))];
      case 'DeleteContact': {
        const contact = workspace.deleteContact(params.contact_id!);
        return [200, { type: 'contact', id: contact.id, external_id: contact.external_id, deleted: true }];
      }
      case 'ArchiveContact': {
        const contact = workspace.archiveContact(params.contact_id!);
        return [200, { type: 'contact', id: contact.id, external_id: contact.external_id, archived: true }];
      }
      case 'UnarchiveContact': {
        const contact = workspace.unarchiveContact(params.contact_id!);
        return [200, { type: 'contact', id: contact.id, external_id: contact.external_id, archived: false }];
      }
      case 'ShowContactByExternalId':
        return [200, contactJson(workspace.findByExternalId(params.external_id!))];
      case 'SearchContacts': {
        const found = workspace.search(body.query as Record<string, unknown>);
        return [200, onePage(found.map(contactJson))];
      }
      case 'MergeContact':
        return [200, contactJson(workspace.mergeContacts(body.from as string, body.into as string))];
      case 'lisDataAttributes': {
        const model = query.get('model');
        const list = [...workspace.attributes.values()].filter((a) => model === null || a.model === model);
        return [200, { type: 'list', data: list.map(attributeJson) }];
      }
      case 'createDataAttribute':
        return [200, attributeJson(workspace.createAttribute(body))];
      case 'createDataEvent':
        workspace.createEvent(body);
        return [202, undefined];
      case 'createTag': {
        if (typeof body.name !== 'string') throw new WorkspaceError(400, 'parameter_invalid', 'this simulator creates tags by name only');
        const tag = workspace.createTag(body.name);
        return [200, { type: 'tag', id: tag.id, name: tag.name }];
      }
      case 'attachTagToContact': {
        const tag = workspace.tagContact(params.contact_id!, body.id as string, true);
        return [200, { type: 'tag', id: tag.id, name: tag.name }];
      }
      case 'detachTagFromContact': {
        const tag = workspace.tagContact(params.contact_id!, params.tag_id!, false);
        return [200, { type: 'tag', id: tag.id, name: tag.name }];
      }
      case 'createNote':
        return [200, noteJson(workspace.createNote(params.contact_id!, body))];
      case 'listNotes':
        return [200, onePage(workspace.notesOf(params.contact_id!).map(noteJson))];
      case 'createOrUpdateCompany':
        return [200, companyJson(workspace.upsertCompany(body))];
      case 'attachContactToACompany':
        return [200, companyJson(workspace.attachCompany(params.contact_id!, body.id as string))];
      case 'detachContactFromACompany':
        return [200, companyJson(workspace.detachCompany(params.contact_id!, params.company_id!))];
      default:
        throw new WorkspaceError(404, 'not_found', `${operation.operationId} is not implemented by this simulator`);
    }
  }

  /** A list answered as Intercom pages it, all of it on the first page. */
  function onePage(data: unknown[]): Record<string, unknown> {
    return { type: 'list', data, total_count: data.length, pages: { type: 'pages', page: 1, per_page: 50, total_pages: data.length === 0 ? 0 : 1 } };
  }

  function noteJson(note: SimNote): Record<string, unknown> {
    return { type: 'note', id: note.id, created_at: note.created_at, contact: { type: 'contact', id: note.contactId }, author: SIM_ADMIN, body: note.body };
  }

  function contactJson(contact: SimContact): Record<string, unknown> {
    return {
      type: 'contact',
      id: contact.id,
      workspace_id: workspace.workspaceId,
      external_id: contact.external_id,
      role: contact.role,
      email: contact.email ?? '',
      email_domain: contact.email?.split('@')[1] ?? '',
      phone: contact.phone,
      name: contact.name,
      owner_id: null,
      has_hard_bounced: false,
      marked_email_as_spam: false,
      unsubscribed_from_emails: false,
      created_at: contact.created_at,
      updated_at: contact.updated_at,
      signed_up_at: contact.signed_up_at,
      last_seen_at: contact.last_seen_at,
      custom_attributes: contact.custom_attributes,
      tags: { data: contact.tags.map((tagId) => ({ type: 'tag', id: tagId, url: `/tags/${tagId}` })), url: `/contacts/${contact.id}/tags`, total_count: contact.tags.length, has_more: false },
      companies: { data: contact.companies.map((companyId) => ({ type: 'company', id: companyId, url: `/companies/${companyId}` })), url: `/contacts/${contact.id}/companies`, total_count: contact.companies.length, has_more: false },
    };
  }

  function attributeJson(attribute: SimAttribute): Record<string, unknown> {
    return {
      type: 'data_attribute',
      id: attribute.id,
      model: attribute.model,
      name: attribute.name,
      full_name: `custom_attributes.${attribute.name}`,
      label: attribute.name,
      description: attribute.description,
      // The description lists no `datetime` among the answered types: Intercom reports those as dates.
      data_type: attribute.data_type === 'datetime' ? 'date' : attribute.data_type === 'options' ? 'string' : attribute.data_type,
      api_writable: true,
      messenger_writable: false,
      ui_writable: true,
      custom: true,
      archived: false,
      created_at: attribute.created_at,
      updated_at: attribute.created_at,
    };
  }

  function companyJson(company: SimCompany): Record<string, unknown> {
    return { type: 'company', id: company.id, company_id: company.company_id, name: company.name ?? '', app_id: workspace.workspaceId, created_at: company.created_at, updated_at: company.updated_at, custom_attributes: company.custom_attributes };
  }

  function snapshot(): Record<string, unknown> {
    return {
      contacts: [...workspace.contacts.values()],
      events: workspace.events,
      attributes: [...workspace.attributes.values()],
      tags: [...workspace.tags.values()],
      companies: [...workspace.companies.values()],
      stats: { calls: sim.stats.calls, rateLimited: sim.stats.rateLimited, invalid: sim.stats.invalid, byOperation: Object.fromEntries(sim.stats.byOperation) },
      bugs: sim.bugs,
    };
  }

  return Object.assign(sim, await listenLocally(server, options.port));
}

