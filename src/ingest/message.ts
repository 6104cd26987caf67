// The one shape every accepted commercetools notification is turned into, whatever envelope carried it (and
// storefront behaviour events too: ingest/storefront-events.ts). Everything after the HTTP edge (dedupe, routing
// to record sync and event delivery) works on this type only.

/** The commercetools notification types, and `StorefrontEvent` for what a storefront sent (never from commercetools). */
export type NotificationType = 'Message' | 'ResourceCreated' | 'ResourceUpdated' | 'ResourceDeleted' | 'Event' | 'StorefrontEvent';

export interface ResourceRef {
  typeId: string;
  id: string;
}

export interface CommercetoolsNotification {
  /** Dedupe key: the message id for Messages and Events; resource id + version + notification type otherwise. */
  dedupeKey: string;
  notificationType: NotificationType;
  /** Message type (`CustomerCreated`), Event type, the notification type for change notifications, or a storefront event's (`storefront.ProductViewed`). */
  type: string;
  projectKey: string | undefined;
  /** Absent only for Events that are not about a commercetools resource (import-api, checkout). */
  resource: ResourceRef | undefined;
  /** The resource version this notification describes (Message.resourceVersion, or the change's version). */
  resourceVersion: number | undefined;
  /** The full resource when the notification carries it (e.g. CustomerCreated.customer, OrderCreated.order). */
  carriedResource: Record<string, unknown> | undefined;
  /** True for ResourceDeleted and for *Deleted Messages. */
  deleted: boolean;
  /**
   * True when the resource was deleted with `dataErasure=true`: commercetools says so in the ResourceDeleted change
   * notification (`dataErasure`); a *Deleted Message carrying `dataErasure: true` (a relay's own) counts too.
   * ctbridge then forgets what it holds of the resource (engine/erasure.ts).
   */
  dataErasure: boolean;
  /** True when commercetools left the payload out (payloadNotIncluded): the API must be asked. */
  payloadNotIncluded: boolean;
  /** When the change happened in commercetools (ms since epoch); used for end-to-end lag. */
  occurredAt: number | undefined;
  /** The commercetools payload itself (Message / notification / Event), after unwrapping the envelope. */
  payload: Record<string, unknown>;
}

/** Something that was delivered to the ingest endpoint and could not be understood as a notification. */
export interface Unrecognised {
  reason: string;
  body: unknown;
}

/** An envelope that is a control message for the transport rather than a notification. */
export type ControlMessage =
  | { kind: 'sns-subscription-confirmation'; topicArn: string | undefined; subscribeUrl: string | undefined; messageId: string | undefined }
  | { kind: 'eventgrid-validation'; validationCode: string }
  | { kind: 'subscription-test'; dedupeKey: string };

export type NormalizedItem =
  | { kind: 'notification'; notification: CommercetoolsNotification }
  | { kind: 'control'; control: ControlMessage }
  | { kind: 'unrecognised'; unrecognised: Unrecognised };

/**
 * The resource a Message is about and, when it carries it, the resource itself (OrderCreated carries `order`,
 * BusinessUnitCreated `businessUnit`: the typeId in camel case). Undefined for anything that is not a Message.
 */
export function carriedByMessage(message: Record<string, unknown>): { typeId: string; id: string | undefined; resource: Record<string, unknown> | undefined } | undefined {
  const reference = message.resource as { typeId?: unknown; id?: unknown } | null | undefined;
  if (typeof message.type !== 'string' || reference === null || typeof reference !== 'object' || typeof reference.typeId !== 'string') return undefined;
  const carried = message[reference.typeId.replace(/-(\w)/g, (_, letter: string) => letter.toUpperCase())];
  return {
    typeId: reference.typeId,
    id: typeof reference.id === 'string' ? reference.id : undefined,
    resource: carried !== null && typeof carried === 'object' && !Array.isArray(carried) ? (carried as Record<string, unknown>) : undefined,
  };
}
