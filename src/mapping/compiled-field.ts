// What a mapped field compiles to: how to read it and what it reads. A module of its own so that the PII policy,
// which wraps compiled fields, and the field compiler, which applies the policy, do not import each other.
import type { PathStep } from './path.ts';
import type { TransformContext } from './transforms.ts';

export interface CompiledField {
  /** A value, or a promise of one when `async` is set. */
  read(source: unknown, context: TransformContext): unknown;
  async: boolean;
  /** It reads the record's context (through a transform, a `$name` path or JSONata's variables). */
  usesContext: boolean;
  /** Paths of the References whose expanded object it reads (`customerGroup` for `customerGroup.obj.name`). */
  references: readonly (readonly PathStep[])[];
  /** The same on `$subject`, the order or cart an event's message is about (`$subject.store.obj.name`: `store`). */
  subjectReferences: readonly (readonly PathStep[])[];
  /** Its `.obj` reads that are not expanded, as written (`$orders.store.obj`, JSONata's `$c.obj`): their obj is missing. */
  unexpandedReferences: readonly string[];
  /** It reads `$orders` (a path or JSONata): the customer's orders must be fetched before it is read. */
  readsOrders: boolean;
  /** The names of the source fields it reads, for telling whether it carries personal data. */
  sourceNames: readonly string[];
  /** The last name of each path it reads (`firstName` of `shippingAddress.firstName`): what classifies its PII. */
  sourceLeaves: readonly string[];
  /** Transforms it uses, by name (the configuration checks their secrets are set). */
  transforms: readonly string[];
  /** Its parts went through the PII policy one by one (a list's fields): the policy leaves the whole alone. */
  partsTreated?: boolean;
}
