// Which intake a body came in through, and how it is read: commercetools notifications (POST
// /v1/ingest/commercetools, any envelope: normalize.ts) or storefront events (POST /v1/events/storefront:
// storefront-events.ts). The inbox keeps a body's intake in its `transport` column beside the transport headers
// normalisation reads, under a name no header is ever stored as (transportHeaders keeps only the headers it
// names), so a body sent to the commercetools endpoint can never be read as storefront events, nor the reverse.
import type { NormalizedSlice } from './normalize.ts';
import { normalizeSlice } from './normalize.ts';
import { normalizeStorefrontSlice } from './storefront-events.ts';

/** A storefront's events, accepted under its key: `storefront` is its configured name. */
export interface StorefrontIntake {
  kind: 'storefront';
  storefront: string;
}

/** Where a body came in; commercetools notifications when absent. */
export type Intake = StorefrontIntake;

const INTAKE = 'ctbridge:intake';
const STOREFRONT = 'ctbridge:storefront';

/** What the inbox's `transport` column keeps of a body: the transport headers, or its intake. */
export function transportOf(intake: Intake | undefined, headers: Record<string, string> | undefined): Record<string, string> | undefined {
  return intake ? { [INTAKE]: intake.kind, [STOREFRONT]: intake.storefront } : headers;
}

/** The intake a stored `transport` names (undefined: commercetools notifications). */
export function intakeOf(transport: Record<string, string>): Intake | undefined {
  const storefront = transport[STOREFRONT];
  return transport[INTAKE] === 'storefront' && typeof storefront === 'string' ? { kind: 'storefront', storefront } : undefined;
}

/** The items of a parsed body from the `skip`-th, at most `limit`, read as its intake says. Never throws. */
export function normalizeIntake(body: unknown, intake: Intake | undefined, headers: Record<string, string | string[] | undefined>, skip: number, limit: number): NormalizedSlice {
  return intake ? normalizeStorefrontSlice(body, intake.storefront, skip, limit) : normalizeSlice(body, headers, skip, limit);
}
