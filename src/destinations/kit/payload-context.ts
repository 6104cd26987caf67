// Which items a destination call is made for, so the payload log (store/payload-log.ts) can file each request and
// answer under its record and correlation id without connectors passing them down: `defineDestination` runs each
// operation inside `withPayloadContext` (an item operation with its item, a batch operation with its items), and
// the kit's fetch reads it. A connector that sends later, outside an operation (a batching window), sets it itself.
import { AsyncLocalStorage } from 'node:async_hooks';

export interface PayloadSubject {
  kind: 'record' | 'event' | 'merge';
  /** The record or event mapping's name. */
  type: string;
  /** The commercetools resource id the item is about, when it has one. */
  resourceId: string | undefined;
  correlationId: string;
}

/** One exchange with the destination, as the kit's fetch saw it (bodies as text, untreated). */
export interface PayloadExchange {
  subjects: readonly PayloadSubject[];
  method: string;
  url: string;
  /** The request's Content-Type; no other request header is ever kept (they carry credentials). */
  requestType: string | undefined;
  requestBody: string | undefined;
  status: number | undefined;
  responseType: string | undefined;
  responseBody: string | undefined;
  /** What went wrong when there was no answer. */
  error: string | undefined;
  at: number;
  durationMs: number;
}

const storage = new AsyncLocalStorage<readonly PayloadSubject[]>();

export function withPayloadContext<T>(subjects: readonly PayloadSubject[], run: () => Promise<T>): Promise<T> {
  return storage.run(subjects, run);
}

/** The items of the operation this call is made in; none outside one. */
export function currentPayloadSubjects(): readonly PayloadSubject[] {
  return storage.getStore() ?? [];
}
