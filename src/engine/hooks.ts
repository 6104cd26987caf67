// Optional callbacks the engine makes as work progresses. The sandbox prints them as a live feed; tests and the
// benchmark use them to wait for progress. Logs and metrics never depend on them.

export interface EngineHooks {
  onIngested?(event: { accepted: number; quarantined: number }): void;
  /**
   * Before the router reads inbox row `seq`, inside its routing transaction. Throwing fails the routing of that
   * row as a row that cannot be routed would (tests: a poison row).
   */
  onRouteRow?(seq: number): void;
  /** Inbox rows moved into work: duplicates (dedupe key seen before) are dropped here. */
  onRouted?(event: { routed: number; duplicates: number }): void;
  /** A destination worker's claim round: how many items it took (0 when there was nothing due). */
  onClaim?(event: { destination: string; kind: 'record' | 'event'; claimed: number }): void;
  onSynced?(event: { destination: string; recordType: string; resourceId: string; version: number; operation: 'upsert' | 'delete'; changed: string[]; coalesced: number }): void;
  onDelivered?(event: { destination: string; eventType: string; dedupeKey: string }): void;
  onRetry?(event: { destination: string; kind: 'record' | 'event'; key: string; error: string; attempt: number }): void;
  onDeadLetter?(event: { destination: string; kind: 'record' | 'event'; key: string; reason: string }): void;
}
