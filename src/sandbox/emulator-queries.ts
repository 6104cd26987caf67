// Query parameters the commercetools emulator drops, honoured as commercetools does, for the sandbox and the tests:
// `sort` and `withTotal` on the query endpoints (GET /{projectKey}/orders, /customers, /products, …).
//
// What commercetools does (https://docs.commercetools.com/api/general-concepts#sorting and #pagination,
// https://docs.commercetools.com/api/predicates/query): `sort` takes one or more `field asc|desc` clauses (repeated
// parameter, later ones break ties), and a query `where id > "…"` with `sort=id asc` pages through any number of
// resources without deep offsets — the way commercetools recommends iterating large sets
// (https://docs.commercetools.com/api/general-concepts#paging-through-large-sets-of-resources); `withTotal=false`
// leaves `total` out of the PagedQueryResponse (and saves the count query).
//
// @labdigital/commercetools-mock 4.4.0 sorts in its storage (`applySort`, with the `<`/`>` string order its
// predicates use, so a cursor and the sort agree) but its query services build their parameters without `sort`
// (AbstractService.get passes `expand`, `where`, `limit`, `offset` and the `var.*` predicate variables only), and
// it always answers `total`. This carries both parameters past the service as two internal `var.` names the
// storage and the product repository read back, so sorting and paging stay the emulator's own code.
import type { CommercetoolsMock } from '@labdigital/commercetools-mock';

const SORT = 'var.ctbridgeEmulatorSort';
const WITH_TOTAL = 'var.ctbridgeEmulatorWithTotal';

type QueryParams = Record<string, unknown> & { sort?: string | string[] };
type Paged = { total?: number; results?: unknown[] } & Record<string, unknown>;
interface Storage {
  query: (this: Storage, projectKey: string, typeId: string, params: QueryParams) => Promise<Paged>;
  all(projectKey: string, typeId: string): Promise<unknown[]>;
  forProjectKey(projectKey: string): Promise<Record<string, { _map?: unknown } | undefined>>;
}

/** Honours `sort` and `withTotal` on every query endpoint of the emulator's project. */
export function honourSortAndTotal(mock: CommercetoolsMock, projectKey: string): void {
  mock.app.addHook('onRequest', (request, _reply, done) => {
    const query = request.query as Record<string, unknown> | undefined;
    if (request.method === 'GET' && query) {
      if (query.sort !== undefined) query[SORT] = query.sort;
      if (query.withTotal !== undefined) query[WITH_TOTAL] = query.withTotal;
      delete query.sort;
      delete query.withTotal;
    }
    done();
  });

  const project = mock.project(projectKey);
  const storage = project.config.storage as unknown as Storage;
  const query = storage.query;
  // The emulator's storage hands out a deep copy (JSON round trip) of every stored resource to each query before
  // filtering: a page of 500 out of 20,000 orders costs 20,000 copies (half a second), which would make the
  // emulator, not ctbridge, the limit of a backfill. This query filters and sorts the stored values themselves
  // (the predicate and the sort only read them) and copies only the page it answers. It relies on the storage's
  // StorageMap keeping its values in `_map` (4.4.0); anything else, or a query that expands references (which may
  // write into what it expands), goes the emulator's own way.
  const readOnly = Object.create(storage) as Storage;
  readOnly.all = async (key, typeId) => {
    const maps = await storage.forProjectKey(key);
    const inner = maps[typeId]?._map;
    return inner instanceof Map ? [...inner.values()] : storage.all(key, typeId);
  };
  storage.query = async (key, typeId, params) => {
    const { restore, withTotal } = unwrap(params);
    if (withTotal.expand !== undefined) return restore(await query.call(storage, key, typeId, withTotal));
    const page = await query.call(readOnly, key, typeId, withTotal);
    return restore({ ...page, results: structuredClone(page.results) });
  };
  // Products are queried by their repository (projections of current/staged), which sorts by `params.sort` too.
  const products = project.getRepository('product') as unknown as { query(context: unknown, params: QueryParams): Promise<Paged> };
  const queryProducts = products.query.bind(products);
  products.query = async (context, params) => {
    const { restore, withTotal } = unwrap(params);
    return restore(await queryProducts(context, withTotal));
  };
}

/** The parameters with the internal names turned back into `sort`, and what to do to the answer for `withTotal`. */
function unwrap(params: QueryParams): { withTotal: QueryParams; restore: (page: Paged) => Paged } {
  const { [SORT]: sort, [WITH_TOTAL]: withTotal, ...rest } = params;
  const next: QueryParams = { ...rest, ...(sort !== undefined && { sort: sort as string | string[] }) };
  const dropTotal = withTotal === 'false' || (Array.isArray(withTotal) && withTotal[0] === 'false');
  return {
    withTotal: next,
    restore: (page) => {
      if (!dropTotal) return page;
      const { total: _total, ...withoutTotal } = page;
      return withoutTotal;
    },
  };
}
