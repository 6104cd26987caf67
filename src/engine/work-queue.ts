// The verbs of a work queue, together, the way client-go's workqueue Interface puts Add/Get/Done/Forget: one
// interface that store/record-queue.ts (dirty record keys) and store/event-queue.ts (event deliveries) implement
// for one destination, and that the engine hands as is to the lease machinery (leases.ts) and to a batch
// (batch.ts). Add is the router's: it marks record keys dirty and queues events in the transaction that takes
// their notifications out of the inbox (engine/routing.ts, store/inbox.ts RoutingWriter); a batch's finish may
// mark keys dirty too (a customer whose orders changed).
import type { Transaction } from 'kysely';
import type { Database } from '../store/schema.ts';

export interface WorkQueue<Row, Outcome> {
  /** Get: claims up to `limit` due items under the lease `token` until `leaseUntil`. */
  claim(token: string, limit: number, leaseUntil: number, now: number): Promise<Row[]>;
  /** Moves the lease of `rows` held by `token` on to `leaseUntil` (while their batch is in flight). */
  renew(token: string, rows: readonly Row[], leaseUntil: number): Promise<void>;
  /** Gives the lease `from` (a claim) took of `row` back to `to` (the batch that still has it in flight). */
  handBack(row: Row, from: string, to: string, leaseUntil: number): Promise<void>;
  /** Gives up the lease `token` took of `row`, leaving it due at once (a claim over its byte budget). */
  giveUp(row: Row, token: string, now: number): Promise<void>;
  /**
   * Done (and Forget, for what succeeded or died): records a batch's outcome in one transaction (with `also`),
   * every row's writes fenced by the lease token it was claimed with; returns the rows whose lease was lost.
   */
  finish(now: number, outcome: Outcome, also?: (trx: Transaction<Database>) => Promise<void>): Promise<{ refused: Row[] }>;
  /** Gives back, untouched, what the leases matching `tokens` (a process's, leases.ts tokenPattern) still hold. */
  release(tokens: string): Promise<void>;
  /** What identifies an item (a record key, an event id): one item is never in flight twice in a process. */
  keyOf(row: Row): string;
  /** The bytes an item carries as stored (its resource or message), for a claim's byte budget. */
  sizeOf(row: Row): number;
}
