// Reads commercetools page by page for a backfill, the way commercetools recommends for large sets: sorted by id,
// each page asking for `id > "<last id of the page before>"`, `withTotal=false` and no offset
// (https://docs.commercetools.com/api/general-concepts#paging-through-large-sets-of-resources: deep offsets are
// refused above 10,000 and get slower with depth; a count of everything is a query of its own). Through the
// official SDK, on the client the engine reads with (its errors are the kit's classes).
import type { ByProjectKeyRequestBuilder } from '@commercetools/platform-sdk';
import { quotePredicateString, toDeliveryErrorFromCommercetools, type CommercetoolsClient } from '../commercetools/client.ts';
import { PermanentError } from '../destinations/kit/errors.ts';
import { READABLE_TYPES } from './backfills.ts';


export interface PageQuery {
  resourceType: string;
  /** The last id the page before ended with (null: from the start). */
  afterId: string | null;
  /** Only resources modified at or after this time. */
  since: number | null;
  /** A commercetools query predicate of the user's, and-ed with the cursor. */
  where: string | null;
  /** Only resources of this store (orders: `store`, customers: `stores`, carts: `store`). */
  storeKey: string | null;
  limit: number;
}

export interface PageReader {
  /** Up to `limit` resources with ids after `afterId`, in id order; fewer means the end. */
  page(query: PageQuery): Promise<Array<Record<string, unknown>>>;
}

/** The predicate a page asks for: the cursor, then the backfill's filters. */
export function pagePredicate(query: Omit<PageQuery, 'limit'>): string | undefined {
  const parts: string[] = [];
  if (query.afterId !== null) parts.push(`id > ${quotePredicateString(query.afterId)}`);
  if (query.since !== null) parts.push(`lastModifiedAt >= ${quotePredicateString(new Date(query.since).toISOString())}`);
  if (query.storeKey !== null) {
    const key = quotePredicateString(query.storeKey);
    if (query.resourceType === 'customer') parts.push(`stores(key = ${key})`);
    else if (query.resourceType === 'order' || query.resourceType === 'cart') parts.push(`store(key = ${key})`);
    else throw new PermanentError(`a ${query.resourceType} belongs to no store: --store applies to customers, orders and carts`);
  }
  if (query.where !== null) parts.push(`(${query.where})`);
  return parts.length === 0 ? undefined : parts.join(' and ');
}

export function createPageReader(client: Pick<CommercetoolsClient, 'api'>): PageReader {
  return {
    async page(query) {
      const where = pagePredicate(query);
      const queryArgs = { sort: ['id asc'], limit: Math.max(1, Math.min(500, query.limit)), withTotal: false, ...(where !== undefined && { where }) };
      try {
        const response = await requestFor(client.api, query.resourceType, queryArgs).execute();
        return response.body.results as unknown as Array<Record<string, unknown>>;
      } catch (error) {
        throw toDeliveryErrorFromCommercetools(error, `reading a page of ${query.resourceType}s`);
      }
    },
  };
}

type QueryArgs = { sort: string[]; limit: number; withTotal: boolean; where?: string };

function requestFor(api: ByProjectKeyRequestBuilder, typeId: string, queryArgs: QueryArgs) {
  switch (typeId) {
    case 'customer':
      return api.customers().get({ queryArgs });
    case 'order':
      return api.orders().get({ queryArgs });
    case 'product':
      return api.products().get({ queryArgs });
    case 'payment':
      return api.payments().get({ queryArgs });
    case 'cart':
      return api.carts().get({ queryArgs });
    case 'business-unit':
      return api.businessUnits().get({ queryArgs });
    default:
      throw new PermanentError(`resources of type "${typeId}" cannot be backfilled (readable: ${READABLE_TYPES.join(', ')})`);
  }
}
