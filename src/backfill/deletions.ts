// Deletions for scheduled sync: a deleted resource is in no query, so polling `lastModifiedAt` never finds it.
// commercetools says so in a *Deleted Message (CustomerDeleted, OrderDeleted…), which the Messages API
// (`GET /{projectKey}/messages`) keeps for querying when the project has messages enabled (Project
// `messages.enabled`, changed with the changeMessagesConfiguration update action), for `deleteDaysAfterCreation`
// days (15 by default) — https://docs.commercetools.com/api/projects/messages and
// https://docs.commercetools.com/api/releases/2018-10-08-delete-messages-after-days. With messages disabled
// nothing is stored to query, so deletions cannot be found by polling; that is reported, not guessed.
// Through the official SDK, on the client the engine reads with (its errors are the kit's classes).
import { quotePredicateString, toDeliveryErrorFromCommercetools, type CommercetoolsClient } from '../commercetools/client.ts';

export interface DeletionMessage {
  id: string;
  resourceId: string;
  /** The version the deletion gave the resource (the Message's resourceVersion). */
  resourceVersion: number;
  /** ms since the epoch. */
  createdAt: number;
}

export interface DeletionQuery {
  messageType: string;
  /** Messages created at or after this time (ms). */
  since: number;
  /** The last message of the page before, in (createdAt, id) order; null for the first page. */
  after: { createdAt: number; id: string } | null;
  limit: number;
}

export interface DeletionReader {
  /** Whether the project keeps Messages for querying (Project `messages.enabled`). */
  messagesEnabled(): Promise<boolean>;
  /** Deletion Messages in (createdAt, id) order; fewer than `limit` means the end. */
  page(query: DeletionQuery): Promise<DeletionMessage[]>;
}

/** The predicate of a page: the type, the window, and the keyset cursor (no deep offsets). */
export function deletionPredicate(query: Omit<DeletionQuery, 'limit'>): string {
  const at = (ms: number) => quotePredicateString(new Date(ms).toISOString());
  const parts = [`type = ${quotePredicateString(query.messageType)}`, `createdAt >= ${at(query.since)}`];
  if (query.after !== null) parts.push(`(createdAt > ${at(query.after.createdAt)} or (createdAt = ${at(query.after.createdAt)} and id > ${quotePredicateString(query.after.id)}))`);
  return parts.join(' and ');
}

export function createDeletionReader(client: Pick<CommercetoolsClient, 'api'>): DeletionReader {
  return {
    async messagesEnabled() {
      try {
        const project = await client.api.get().execute();
        return project.body.messages.enabled;
      } catch (error) {
        throw toDeliveryErrorFromCommercetools(error, 'reading the project\'s messages configuration');
      }
    },
    async page(query) {
      const queryArgs = { where: deletionPredicate(query), sort: ['createdAt asc', 'id asc'], limit: Math.max(1, Math.min(500, query.limit)), withTotal: false };
      try {
        const response = await client.api.messages().get({ queryArgs }).execute();
        return response.body.results.flatMap((message) =>
          typeof message.resourceVersion === 'number' ? [{ id: message.id, resourceId: message.resource.id, resourceVersion: message.resourceVersion, createdAt: Date.parse(message.createdAt) }] : [],
        );
      } catch (error) {
        throw toDeliveryErrorFromCommercetools(error, `reading ${query.messageType} Messages`);
      }
    },
  };
}
