// The connector kit: everything a connector folder imports, from one place — the declaration helper, the items it
// receives and the outcomes it returns, the error classes with the one status classification, the destination's
// fetch and the small HTTP client over it. Connectors import nothing from the engine.
export { defineDestination, type BatchOperation, type ConnectorDefinition, type ItemOperation, type Operation, type Routing } from './define.ts';
export { DeliveryError, PermanentError, RateLimitedError, RetryableError, classifyStatus, errorForStatus, parseRetryAfter, toDeliveryError, type StatusClass } from './errors.ts';
export { DEFAULT_RATE_LIMIT_PAUSE_MS, DEFAULT_TIMEOUT_MS, createDestinationFetch, errorForAnswer, type CallLimiter, type CallOptions, type DestinationFetch, type DestinationFetchDeps } from './fetch.ts';
export { memoryConnectorState } from './state.ts';
export { currentPayloadSubjects, withPayloadContext, type PayloadExchange, type PayloadSubject } from './payload-context.ts';
export { createHttpClient, type HttpClient, type HttpRequest, type HttpResponse } from './http.ts';
export type { ConnectorDeps, ConnectorLimits, ConnectorState, EventItem, EventSeconds, FieldProblem, ItemOutcome, LateFailure, MappedFieldNames, PersonMergeItem, RecordItem, RecordReadItem, RecordReadOutcome } from '../types.ts';
