// A local monday.com platform API (GraphQL, `POST /v2`) as strict as the real one, for the tests, the sandbox and
// the benchmark. Every operation is parsed, validated and executed by graphql-js against the vendored schema
// (spec/monday/schema.graphql, API version 2025-04): an unknown field, a wrong argument type or a missing variable
// is answered with monday's error shape. The account (account.ts) holds boards, groups, items, subitems and column
// values with monday's formats and validation. Limits are monday's: the token goes in `Authorization` as it is (no
// `Bearer`), `API-Version` names the version; every query is charged its complexity against a per-minute budget
// (COMPLEXITY_BUDGET_EXHAUSTED with `retry_in_seconds` once spent), one query may cost at most 5,000,000 points,
// calls per minute are limited (HTTP 429 "Rate Limit Exceeded") and so are calls per day (DAILY_LIMIT_EXCEEDED,
// until midnight UTC) and requests running at once (FIELD_LIMIT_EXCEEDED, HTTP 429, with `retry_in_seconds`).
// Application errors come with HTTP 200 and an `errors` array (with partial `data`), as monday answers them;
// faults can be injected, and everything that arrived can be inspected.
// Sources: developer.monday.com api-reference "Error handling" (2025-01 unified format, HTTP 200 for application
// errors, Retry-After, request_id in extensions), "Rate limits" (complexity budget per minute, 5M per query, daily
// and minute limits, concurrency), apps docs "Authorization header", changelog 2025-01 complexity error format and
// "New descriptive field limit exceeded error" (FIELD_LIMIT_EXCEEDED is the concurrency limit);
// spec/monday/README.md ("Errors", "Limits") restates them. monday does not publish the complexity of each field
// (spec/monday/README.md, "What the sources leave open"): the simulator charges every mutation MUTATION_COST plus
// its selection, and a list its children times its limit — the same order of magnitude the API's
// `complexity { query }` reports for such operations.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import {
  Kind,
  OperationTypeNode,
  buildSchema,
  execute,
  getOperationAST,
  parse,
  validate,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLError,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import { readBody } from '../http-body.ts';
import { recordActivityLogs, type ActivityLogQuery, type ActivityLogs } from './activity-logs.ts';
import { MondayAccount, MondayApiError, type SimBoard, type SimColumn, type SimItem } from './account.ts';
import { listenLocally } from '../local-server.ts';

export const MONDAY_SCHEMA_PATH = fileURLToPath(new URL('../../../spec/monday/schema.graphql', import.meta.url));
/** The API version whose schema is vendored: the one the simulator serves. */
export const MONDAY_API_VERSION = '2025-04';
/** One query may cost at most this much (monday's documented limit). */
export const MAX_QUERY_COMPLEXITY = 5_000_000;
/** What the simulator charges for one mutation (see the header comment). */
export const MUTATION_COST = 10_000;

export type MondayFault =
  | { kind: 'status'; status: number; retryAfterSeconds?: number }
  | { kind: 'reset' }
  /** An application error in monday's 2025 shape, answered with `httpStatus` (200 by default). */
  | { kind: 'error'; code: string; message: string; statusCode?: number; retryInSeconds?: number; httpStatus?: number }
  /** The older shape some errors still come in: error_code, status_code, error_message, error_data at the top. */
  | { kind: 'legacy'; errorCode: string; message: string; statusCode?: number; errorData?: Record<string, unknown>; httpStatus?: number }
  /** FIELD_LIMIT_EXCEEDED, as the concurrency limit answers it (see `maxConcurrentRequests`). */
  | { kind: 'fieldLimit'; retryInSeconds?: number; entity?: string };

export interface MondaySimulatorOptions {
  token: string;
  /** Complexity points per minute (personal tokens on paid plans: 10,000,000 reads and writes together). */
  budgetPerMinute?: number;
  /** The budget's window: monday's is a minute; tests shorten it so that a reset comes within seconds. */
  budgetWindowMs?: number;
  /** Requests per minute before HTTP 429 (monday: 5,000 on most plans). */
  requestsPerMinute?: number;
  /** Requests per day (UTC) before DAILY_LIMIT_EXCEEDED; unlimited when unset (Pro and Enterprise limits are soft). */
  dailyLimit?: number;
  /**
   * Most requests in flight at once (received, not yet answered) before FIELD_LIMIT_EXCEEDED. monday publishes no
   * figure; the default is generous, so that only a test that means to reach it does.
   */
  maxConcurrentRequests?: number;
  /** The `retry_in_seconds` FIELD_LIMIT_EXCEEDED gives (15 in monday's example of the error). */
  concurrencyRetryInSeconds?: number;
  port?: number;
  now?: () => number;
  schemaPath?: string;
  /** Who the API token acts as, and who edits by hand, in the activity logs' user_id. */
  apiUserId?: number;
  handUserId?: number;
}

export interface RecordedMutation {
  field: string;
  alias: string;
  args: Record<string, unknown>;
  /** column_values parsed, when the mutation had them. */
  columnValues?: Record<string, unknown>;
  ok: boolean;
}

/** A request as it arrived: when (the simulator's clock, at its headers) and the HTTP status it was answered with. */
export interface ReceivedRequest {
  at: number;
  /** 0 until answered (or when the connection ended without an answer). */
  status: number;
}

export interface MondaySimulator {
  url: string;
  account: MondayAccount;
  /** Every column change, as `boards { activity_logs }` serves it (activity-logs.ts). */
  activityLogs: ActivityLogs;
  token: string;
  faults: MondayFault[];
  faultFor: ((query: string) => MondayFault | undefined) | undefined;
  stats: {
    /**
     * Requests received, answered with COMPLEXITY_BUDGET_EXHAUSTED, with HTTP 429 for the minute limit, with
     * FIELD_LIMIT_EXCEEDED for the concurrency limit, refused by validation.
     */
    calls: number;
    budgetExhausted: number;
    rateLimited: number;
    concurrencyLimited: number;
    invalid: number;
    /** Complexity charged in all, and mutations executed. */
    complexity: number;
    mutations: number;
  };
  /** Every mutation executed, in order (the last 10,000). */
  mutations: RecordedMutation[];
  /** Every request received, in order (the last 10,000), whatever it was answered. */
  requests: ReceivedRequest[];
  /** The current budget window. */
  budget(): { limit: number; left: number; resetInSeconds: number; windowStart: number };
  /** Requests received (their headers) and not yet answered. */
  inFlight(): number;
  close(): Promise<void>;
}

const schemas = new Map<string, GraphQLSchema>();
function schemaAt(path: string): GraphQLSchema {
  let schema = schemas.get(path);
  if (!schema) {
    schema = buildSchema(readFileSync(path, 'utf8'));
    schemas.set(path, schema);
  }
  return schema;
}

const MINUTE_MS = 60_000;
const KEPT_MUTATIONS = 10_000;
const KEPT_REQUESTS = 10_000;
const ACCOUNT_ID = 9_000_001;

export async function startMondaySimulator(options: MondaySimulatorOptions): Promise<MondaySimulator> {
  const now = options.now ?? Date.now;
  const schema = schemaAt(options.schemaPath ?? MONDAY_SCHEMA_PATH);
  const account = new MondayAccount({ now });
  // Users as webhooks.ts names them by default: the API token's, and a person's.
  const activityLogs = recordActivityLogs(account, { api: options.apiUserId ?? 1, hand: options.handUserId ?? 2, accountId: ACCOUNT_ID });
  const budgetLimit = options.budgetPerMinute ?? 10_000_000;
  const budgetWindowMs = options.budgetWindowMs ?? MINUTE_MS;
  const requestsPerMinute = options.requestsPerMinute ?? 5_000;
  const maxConcurrentRequests = options.maxConcurrentRequests ?? 100;
  const concurrencyRetryInSeconds = options.concurrencyRetryInSeconds ?? 15;
  let inFlight = 0;
  let budgetWindow = { start: Number.NEGATIVE_INFINITY, used: 0 };
  let requestWindow = { start: Number.NEGATIVE_INFINITY, used: 0 };
  let day = { key: '', used: 0 };

  const currentBudget = () => {
    const at = now();
    if (at - budgetWindow.start >= budgetWindowMs) budgetWindow = { start: at, used: 0 };
    return { limit: budgetLimit, left: budgetLimit - budgetWindow.used, resetInSeconds: Math.max(1, Math.ceil((budgetWindow.start + budgetWindowMs - at) / 1000)), windowStart: budgetWindow.start };
  };

  const sim: Omit<MondaySimulator, 'url' | 'close'> = {
    account,
    activityLogs,
    token: options.token,
    faults: [],
    faultFor: undefined,
    stats: { calls: 0, budgetExhausted: 0, rateLimited: 0, concurrencyLimited: 0, invalid: 0, complexity: 0, mutations: 0 },
    mutations: [],
    requests: [],
    budget: currentBudget,
    inFlight: () => inFlight,
  };

  // A request is in flight from its headers to the end of its answer (or its connection's): what the concurrency
  // limit counts.
  const server: Server = createServer((req, res) => {
    inFlight += 1;
    const received: ReceivedRequest = { at: now(), status: 0 };
    sim.requests.push(received);
    if (sim.requests.length > KEPT_REQUESTS) sim.requests.splice(0, sim.requests.length - KEPT_REQUESTS);
    res.once('finish', () => (received.status = res.statusCode));
    res.once('close', () => (inFlight -= 1));
    void readBody(req).then((raw) => handle(req, res, raw));
  });

  // Not emitted: the `RateLimit-Policy` and `RateLimit` headers newer API versions put on every response
  // (developer.monday.com/api-reference/docs/error-handling, "Rate limit headers"). monday's documentation names
  // the headers but what we could read of it does not give their values — which policies (complexity, minute,
  // daily) they list, under which names, and in which draft of the IETF RateLimit fields' syntax — nor from which
  // API version on they come. Emitting a guessed format would let a client be built against headers monday does
  // not send; the connector paces on `complexity { … }` in the body, which the simulator does answer.
  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    // monday's own clock (activity logs' created_at follow it), which the connector reads to poll by it.
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', date: new Date(now()).toUTCString(), ...headers });
    res.end(JSON.stringify(body));
  }

  const requestExtensions = () => ({ request_id: randomUUID() });
  /** A request-level error (no data): monday's 2025 shape. */
  const errorBody = (message: string, extensions: Record<string, unknown>) => ({ errors: [{ message, extensions }], account_id: ACCOUNT_ID, extensions: requestExtensions() });

  /**
   * The concurrency limit. monday's changelog ("New descriptive field limit exceeded error",
   * developer.monday.com/api-reference/changelog/new-descriptive-field-limit-exceeded-error): FIELD_LIMIT_EXCEEDED
   * "occurs when there are too many requests running concurrently", resolved by waiting the time the error gives
   * before retrying; its example, in the flat shape of versions before 2025-01: error_message "Concurrency limit
   * exceeded for the field", error_data {retry_in_seconds, entity}, status_code 429. From 2025-01 the same fields
   * come as an `errors` entry's message and extensions ("Error handling": code, status_code, error_data). The HTTP
   * status is 429: "Error handling" answers 200 only for application errors and a status of their own for
   * transport ones, "429 - Too many requests" among them, and "Error codes" gives the concurrency limit
   * ("Concurrency limit exceeded") HTTP status 429. Retry-After carries the wait, as on monday's other errors.
   */
  function concurrencyLimited(res: ServerResponse, entity: string, retryInSeconds: number): void {
    sim.stats.concurrencyLimited += 1;
    send(res, 429, errorBody('Concurrency limit exceeded for the field', { code: 'FIELD_LIMIT_EXCEEDED', status_code: 429, error_data: { retry_in_seconds: retryInSeconds, entity } }), { 'retry-after': String(retryInSeconds) });
  }

  function handle(req: IncomingMessage, res: ServerResponse, raw: Buffer): void {
    sim.stats.calls += 1;
    const url = new URL(req.url ?? '/', 'http://simulator');
    if (req.method !== 'POST' || url.pathname !== '/v2') return send(res, 404, { error_message: `Not found: ${req.method ?? ''} ${url.pathname}`, status_code: 404 });

    let body: { query?: unknown; variables?: unknown; operationName?: unknown };
    try {
      body = JSON.parse(raw.toString('utf8')) as typeof body;
    } catch {
      return send(res, 400, { error_message: 'No query string was present', status_code: 400 });
    }
    if (typeof body?.query !== 'string' || body.query === '') return send(res, 400, { error_message: 'No query string was present', status_code: 400 });

    const fault = sim.faults.shift() ?? sim.faultFor?.(body.query);
    if (fault?.kind === 'reset') return void req.socket.destroy();
    if (fault?.kind === 'status') return send(res, fault.status, { error_message: `injected ${fault.status}`, status_code: fault.status }, fault.retryAfterSeconds !== undefined ? { 'retry-after': String(fault.retryAfterSeconds) } : {});
    if (fault?.kind === 'legacy') return send(res, fault.httpStatus ?? 200, { error_code: fault.errorCode, status_code: fault.statusCode ?? 200, error_message: fault.message, error_data: fault.errorData ?? {}, errors: [fault.message], account_id: ACCOUNT_ID });
    if (fault?.kind === 'fieldLimit') return concurrencyLimited(res, fault.entity ?? 'boards', fault.retryInSeconds ?? concurrencyRetryInSeconds);
    if (fault?.kind === 'error') {
      return send(res, fault.httpStatus ?? 200, errorBody(fault.message, { code: fault.code, status_code: fault.statusCode ?? 429, ...(fault.retryInSeconds !== undefined && { retry_in_seconds: fault.retryInSeconds }) }), fault.retryInSeconds !== undefined ? { 'retry-after': String(fault.retryInSeconds) } : {});
    }

    // The token as it is: monday reads the whole header as the token (no Bearer scheme).
    if (req.headers.authorization !== sim.token) return send(res, 401, errorBody('Not Authenticated', { code: 'UNAUTHORIZED', status_code: 401 }));
    // API-Version is optional: without it monday serves its "Current" version ("Used as the default version when
    // no header is passed", developer.monday.com/api-reference/docs/versioning). The
    // simulator serves one version, MONDAY_API_VERSION, and plays it as the current one; a version it does not
    // implement is refused, so a test never believes another schema was checked.
    const version = req.headers['api-version'] ?? MONDAY_API_VERSION;
    if (version !== MONDAY_API_VERSION) {
      return send(res, 400, errorBody(`API version ${String(version)} is not served by this simulator (it implements ${MONDAY_API_VERSION})`, { code: 'InvalidVersionException', status_code: 400 }));
    }

    // Calls per minute, then per day.
    const at = now();
    if (at - requestWindow.start >= MINUTE_MS) requestWindow = { start: at, used: 0 };
    if (requestWindow.used >= requestsPerMinute) {
      sim.stats.rateLimited += 1;
      const retry = Math.max(1, Math.ceil((requestWindow.start + MINUTE_MS - at) / 1000));
      return send(res, 429, errorBody('Rate Limit Exceeded', { code: 'RATE_LIMIT_EXCEEDED', status_code: 429, retry_in_seconds: retry }), { 'retry-after': String(retry) });
    }
    requestWindow.used += 1;
    const dayKey = new Date(at).toISOString().slice(0, 10);
    if (day.key !== dayKey) day = { key: dayKey, used: 0 };
    if (options.dailyLimit !== undefined && day.used >= options.dailyLimit) {
      const retry = Math.ceil((Date.parse(`${dayKey}T00:00:00Z`) + 86_400_000 - at) / 1000);
      return send(res, 200, errorBody('Daily limit exceeded', { code: 'DAILY_LIMIT_EXCEEDED', status_code: 429, retry_in_seconds: retry }), { 'retry-after': String(retry) });
    }
    day.used += 1;

    let document: DocumentNode;
    try {
      document = parse(body.query);
    } catch (error) {
      sim.stats.invalid += 1;
      const syntax = error as GraphQLError;
      return send(res, 200, { errors: [{ message: `Parse error on ${syntax.message}`, locations: syntax.locations, extensions: { code: 'PARSING_ERROR', status_code: 200 } }], account_id: ACCOUNT_ID, extensions: requestExtensions() });
    }
    const problems = validate(schema, document);
    const operation = getOperationAST(document, typeof body.operationName === 'string' ? body.operationName : undefined);
    if (problems.length > 0 || !operation) {
      sim.stats.invalid += 1;
      const errors = problems.length > 0 ? problems.map((p) => ({ message: p.message, locations: p.locations, extensions: { code: 'GRAPHQL_VALIDATION_FAILED', status_code: 200 } })) : [{ message: 'The document names no operation to run', extensions: { code: 'GRAPHQL_VALIDATION_FAILED', status_code: 200 } }];
      return send(res, 200, { errors, account_id: ACCOUNT_ID, extensions: requestExtensions() });
    }
    const variables = body.variables !== null && typeof body.variables === 'object' ? (body.variables as Record<string, unknown>) : {};

    if (inFlight > maxConcurrentRequests) {
      // The entity: the first field the operation asks for (monday's example names "boards").
      const first = operation.selectionSet.selections.find((s) => s.kind === Kind.FIELD && s.name.value !== 'complexity');
      return concurrencyLimited(res, first?.kind === Kind.FIELD ? first.name.value : operation.operation, concurrencyRetryInSeconds);
    }

    const fragments = new Map(document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]));
    const cost = complexityOf(operation, fragments, variables);
    if (cost > MAX_QUERY_COMPLEXITY) {
      return send(res, 200, errorBody(`Query has complexity of ${cost}, which exceeds max complexity of ${MAX_QUERY_COMPLEXITY}`, { code: 'maxComplexityExceeded', status_code: 200, complexity: cost, max_complexity: MAX_QUERY_COMPLEXITY }));
    }
    const budget = currentBudget();
    if (cost > budget.left) {
      sim.stats.budgetExhausted += 1;
      // The 2025-01 to 2025-04 shape (from 2025-07 only code and retry_in_seconds remain).
      return send(res, 200, errorBody('Complexity budget exhausted', { code: 'COMPLEXITY_BUDGET_EXHAUSTED', complexity: cost, complexity_budget_left: budget.left, complexity_budget_limit: budgetLimit, retry_in_seconds: budget.resetInSeconds, status_code: 429 }), { 'retry-after': String(budget.resetInSeconds) });
    }
    budgetWindow.used += cost;
    sim.stats.complexity += cost;
    const complexity = { before: budget.left, after: budget.left - cost, query: cost, reset_in_x_seconds: budget.resetInSeconds };

    const rootValue = operation.operation === OperationTypeNode.MUTATION ? mutationRoot(complexity) : queryRoot(complexity);
    const result = execute({ schema, document, rootValue, variableValues: variables, operationName: operation.name?.value });
    if (result instanceof Promise) throw new Error('the simulator resolves synchronously');
    const errors = result.errors?.map((error) => formatError(error));
    return send(res, 200, { data: result.data ?? null, ...(errors && errors.length > 0 && { errors }), account_id: ACCOUNT_ID, extensions: requestExtensions() });
  }

  /** A resolver's failure in monday's shape: its code, status_code and error_data, with where it happened. */
  function formatError(error: GraphQLError): Record<string, unknown> {
    const original = error.originalError;
    const extensions = original instanceof MondayApiError ? { code: original.code, status_code: original.statusCode, error_data: original.errorData } : { code: original ? 'INTERNAL_SERVER_ERROR' : 'GRAPHQL_VALIDATION_FAILED', status_code: original ? 500 : 200 };
    return { message: error.message, locations: error.locations, path: error.path, extensions };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Resolvers: plain objects whose fields graphql-js reads (functions are called with the field's arguments).

  const recorded = (field: string, args: Record<string, unknown>, ok: boolean, info: { path: { key: string | number } }) => {
    if (ok) sim.stats.mutations += 1;
    let columnValues: Record<string, unknown> | undefined;
    if (typeof args.column_values === 'string') {
      try {
        columnValues = JSON.parse(args.column_values) as Record<string, unknown>;
      } catch {
        // recorded as it came
      }
    }
    sim.mutations.push({ field, alias: String(info.path.key), args, ...(columnValues && { columnValues }), ok });
    if (sim.mutations.length > KEPT_MUTATIONS) sim.mutations.splice(0, sim.mutations.length - KEPT_MUTATIONS);
  };

  function mutating(field: string, run: (args: Record<string, unknown>) => SimItem) {
    return (args: Record<string, unknown>, _context: unknown, info: { path: { key: string | number } }) => {
      try {
        const item = run(args);
        recorded(field, args, true, info);
        return itemView(item);
      } catch (error) {
        recorded(field, args, false, info);
        throw error;
      }
    };
  }

  function mutationRoot(complexity: Record<string, number>): Record<string, unknown> {
    return {
      complexity,
      create_item: mutating('create_item', (args) => account.createItem(String(args.board_id), args.group_id as string | undefined, args.item_name as string, args.column_values, args.create_labels_if_missing === true)),
      create_subitem: mutating('create_subitem', (args) => account.createSubitem(String(args.parent_item_id), args.item_name as string, args.column_values, args.create_labels_if_missing === true)),
      change_multiple_column_values: mutating('change_multiple_column_values', (args) => {
        if (args.item_id === undefined || args.item_id === null) throw new MondayApiError('item_id is required', 'InvalidArgumentException', { argument: 'item_id' });
        return account.changeColumnValues(String(args.board_id), args.item_id as string, args.column_values, args.create_labels_if_missing === true);
      }),
      archive_item: mutating('archive_item', (args) => account.archiveItem(String(args.item_id))),
      delete_item: mutating('delete_item', (args) => account.deleteItem(String(args.item_id))),
      move_item_to_group: mutating('move_item_to_group', (args) => {
        const item = account.item(String(args.item_id));
        const board = account.board(item.boardId);
        if (!board.groups.some((g) => g.id === args.group_id)) throw new MondayApiError('Group not found', 'InvalidGroupIdException', { group_id: args.group_id });
        item.groupId = String(args.group_id);
        return item;
      }),
    };
  }

  function queryRoot(complexity: Record<string, number>): Record<string, unknown> {
    return {
      complexity,
      boards: (args: { ids?: string[]; limit?: number }) => {
        const boards = args.ids ? args.ids.map((id) => account.boards.get(String(id))).filter((b): b is SimBoard => b !== undefined) : [...account.boards.values()];
        return boards.slice(0, args.limit ?? 25).map((board) => boardView(board));
      },
      items: (args: { ids?: string[] }) => (args.ids ?? []).map((id) => account.items.get(String(id))).filter((i): i is SimItem => i !== undefined).map((item) => itemView(item)),
      items_page_by_column_values: (args: { board_id: string; columns?: Array<{ column_id: string; column_values: Array<string | null> }>; limit: number; cursor?: string }) => {
        if (args.limit > 500) throw new MondayApiError('limit must be at most 500', 'InvalidArgumentException', { limit: args.limit });
        const found = account.itemsByColumnValues(String(args.board_id), args.columns ?? []);
        const offset = args.cursor ? Number(Buffer.from(args.cursor, 'base64url').toString('utf8')) : 0;
        const page = found.slice(offset, offset + args.limit);
        const next = offset + args.limit < found.length ? Buffer.from(String(offset + args.limit)).toString('base64url') : null;
        return { cursor: next, items: page.map((item) => itemView(item)) };
      },
    };
  }

  function boardView(board: SimBoard): Record<string, unknown> {
    return {
      id: board.id,
      name: board.name,
      board_kind: 'public',
      state: 'active',
      type: board.parentBoardId ? 'sub_items_board' : 'board',
      columns: (args: { ids?: string[]; types?: string[] }) => board.columns.filter((c) => (!args.ids || args.ids.includes(c.id)) && (!args.types || args.types.includes(c.type))).map((c) => columnView(c)),
      activity_logs: (args: ActivityLogQuery) => activityLogs.query(board.id, args),
      groups: (args: { ids?: string[] }) => board.groups.filter((g) => !args.ids || args.ids.includes(g.id)).map((g) => ({ id: g.id, title: g.title, archived: false, deleted: false, color: '#579bfc', position: '0' })),
    };
  }

  function columnView(column: SimColumn): Record<string, unknown> {
    const settings = column.type === 'status' ? { labels: Object.fromEntries(column.labels ?? []) } : column.type === 'dropdown' ? { labels: [...(column.labels ?? [])].map(([id, name]) => ({ id, name })) } : column.type === 'board_relation' || column.type === 'subtasks' ? { boardIds: (column.boardIds ?? []).map(Number) } : {};
    return { id: column.id, title: column.title, type: column.type, archived: false, description: null, width: null, settings_str: JSON.stringify(settings) };
  }

  function itemView(item: SimItem): Record<string, unknown> {
    const board = account.boards.get(item.boardId)!;
    return {
      id: item.id,
      name: item.name,
      state: item.state,
      email: `pulse-${item.id}@simulated.monday.example`,
      creator_id: '1',
      url: `https://simulated.monday.com/boards/${item.boardId}/pulses/${item.id}`,
      relative_link: `/boards/${item.boardId}/pulses/${item.id}`,
      created_at: new Date(item.createdAt).toISOString(),
      updated_at: new Date(item.updatedAt).toISOString(),
      subscribers: [],
      board: () => boardView(board),
      group: () => {
        const group = board.groups.find((g) => g.id === item.groupId)!;
        return { id: group.id, title: group.title, archived: false, deleted: false, color: '#579bfc', position: '0' };
      },
      parent_item: () => (item.parentId ? itemView(account.items.get(item.parentId)!) : null),
      subitems: () => item.subitemIds.map((id) => account.items.get(id)).filter((i): i is SimItem => i !== undefined).map((i) => itemView(i)),
      column_values: (args: { ids?: string[]; types?: string[] }) =>
        board.columns.filter((c) => c.type !== 'name' && (!args.ids || args.ids.includes(c.id)) && (!args.types || args.types.includes(c.type))).map((c) => columnValueView(item, c)),
    };
  }

  function columnValueView(item: SimItem, column: SimColumn): Record<string, unknown> {
    const stored = item.values.get(column.id);
    const parsed = stored ? (JSON.parse(stored.value) as Record<string, unknown>) : undefined;
    return {
      __typename: VALUE_TYPES[column.type] ?? 'UnsupportedValue',
      id: column.id,
      type: column.type,
      value: stored?.value ?? null,
      text: stored?.text ?? (column.type === 'text' ? '' : null),
      column: columnView(column),
      board_id: item.boardId,
      item_id: item.id,
      // The typed fields of a few value types.
      label: column.type === 'status' ? (stored?.text ?? null) : undefined,
      index: column.type === 'status' && parsed ? parsed.index : undefined,
      linked_item_ids: column.type === 'board_relation' ? ((parsed?.linkedPulseIds as Array<{ linkedPulseId: number }> | undefined) ?? []).map((l) => String(l.linkedPulseId)) : undefined,
      display_value: column.type === 'board_relation' ? (stored?.text ?? '') : undefined,
    };
  }

  const local = await listenLocally(server, options.port);
  return Object.assign(sim, { url: `${local.url}/v2`, close: local.close });
}

/** The GraphQL type of each column type's value (the ColumnValue interface's implementations). */
const VALUE_TYPES: Record<string, string> = {
  text: 'TextValue',
  long_text: 'LongTextValue',
  email: 'EmailValue',
  phone: 'PhoneValue',
  status: 'StatusValue',
  date: 'DateValue',
  numbers: 'NumbersValue',
  link: 'LinkValue',
  checkbox: 'CheckboxValue',
  dropdown: 'DropdownValue',
  country: 'CountryValue',
  board_relation: 'BoardRelationValue',
  subtasks: 'SubtasksValue',
};

/**
 * What the operation costs (see the header comment): a mutation MUTATION_COST plus its selection, a field 1, a
 * list field's selection times the items it may return (its `limit`, or how many `ids` it names).
 */
function complexityOf(operation: OperationDefinitionNode, fragments: Map<string, FragmentDefinitionNode>, variables: Record<string, unknown>): number {
  const valueOf = (node: ValueNode | undefined): unknown => {
    if (!node) return undefined;
    if (node.kind === Kind.VARIABLE) return variables[node.name.value];
    if (node.kind === Kind.INT) return Number(node.value);
    if (node.kind === Kind.LIST) return node.values.map((v) => valueOf(v));
    return undefined;
  };
  const selectionCost = (set: SelectionSetNode | undefined, depth: number): number => {
    if (!set || depth > 20) return 0;
    let total = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FRAGMENT_SPREAD) total += selectionCost(fragments.get(selection.name.value)?.selectionSet, depth + 1);
      else if (selection.kind === Kind.INLINE_FRAGMENT) total += selectionCost(selection.selectionSet, depth + 1);
      else {
        if (selection.name.value === 'complexity' || selection.name.value === '__typename') continue;
        const limit = valueOf(selection.arguments?.find((a) => a.name.value === 'limit')?.value);
        const ids = valueOf(selection.arguments?.find((a) => a.name.value === 'ids')?.value);
        const many = typeof limit === 'number' ? limit : Array.isArray(ids) ? ids.length : 1;
        total += 1 + many * selectionCost(selection.selectionSet, depth + 1);
        if (depth === 0 && operation.operation === OperationTypeNode.MUTATION) total += MUTATION_COST;
      }
    }
    return total;
  };
  return Math.max(1, selectionCost(operation.selectionSet, 0));
}
