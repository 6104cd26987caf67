// Expands the commercetools References a mapping reads through (`customerGroup.obj.name`, `store.obj.name.en`,
// `state.obj.key`): before a batch is mapped, the referenced objects it needs are looked up in a shared cache and
// the missing ones are fetched in one query per type — never one commercetools call per field or per record.
// Objects like customer groups, stores, channels and states change rarely, so they are cached for a while (a
// change shows in the next sync after the entry expires). Which references a mapping reads is worked out when it
// compiles (field.ts; for JSONata, jsonata-references.ts); a path may then go through lists, by `[*]`, a filter, or
// the FLATTEN steps of a path read from JSONata, and each reference it reaches is expanded where it is.
// Custom objects (`key-value-document`) are expanded too, with two differences: a resource rarely references one,
// so a mapping names one by where it is — `customObjects.<container>.<field>.obj` is the custom object in that
// container whose key is the resource's <field> (`customObjects.consent.id.obj.value.email`: the object keyed by
// the customer's id in the container `consent`) — and they hold data that changes (consent), so they are never
// cached: each batch reads the ones it needs afresh, in one query per container.
import type { PathStep } from './path.ts';
import { concretePaths, readPath } from './path.ts';

/**
 * The types a mapping may expand: the slowly changing ones a record points at (an order's discount codes: their code;
 * a product's categories, with their ancestors: a category path), and custom objects.
 */
export const EXPANDABLE_TYPES = ['customer-group', 'store', 'channel', 'state', 'discount-code', 'key-value-document', 'category'] as const;
export type ExpandableType = (typeof EXPANDABLE_TYPES)[number];

/**
 * Reads objects of one type by id or by key (a KeyReference, like an order's store, has only the key). Custom objects
 * by key are asked for as `<container>/<key>` and returned under that (neither may contain a slash).
 */
export type ReferenceLoader = (typeId: ExpandableType, by: 'id' | 'key', values: string[]) => Promise<Map<string, Record<string, unknown>>>;

export interface ExpandRequest {
  resource: unknown;
  references: readonly (readonly PathStep[])[];
}

export interface ReferenceExpander {
  /** Each resource with `obj` filled in on the references asked for, or the error that prevented loading them. */
  expand(requests: readonly ExpandRequest[]): Promise<Array<unknown>>;
}

export interface ReferenceCacheOptions {
  ttlMs?: number;
  maxEntries?: number;
  now?: () => number;
}

interface Wanted {
  typeId: ExpandableType;
  by: 'id' | 'key';
  value: string;
}

const expandable = new Set<string>(EXPANDABLE_TYPES);
/** The first step of a path naming a custom object by container and key field (see the header). */
export const CUSTOM_OBJECTS_STEP = 'customObjects';
/** Types whose objects change too often to cache: read afresh per batch. */
const UNCACHED = new Set<string>(['key-value-document']);

export function createReferenceExpander(load: ReferenceLoader, options: ReferenceCacheOptions = {}): ReferenceExpander {
  const ttlMs = options.ttlMs ?? 5 * 60_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const now = options.now ?? Date.now;
  // Insertion-ordered, so the first entry is the oldest; `null` remembers that the object does not exist.
  const cache = new Map<string, { object: Record<string, unknown> | null; expiresAt: number }>();
  const inFlight = new Map<string, Promise<Record<string, unknown> | null>>();

  const cacheKey = (wanted: Wanted) => `${wanted.typeId}\u0000${wanted.by}\u0000${wanted.value}`;

  function cached(key: string): Record<string, unknown> | null | undefined {
    if (UNCACHED.has(key.slice(0, key.indexOf('\u0000')))) return undefined;
    const entry = cache.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= now()) {
      cache.delete(key);
      return undefined;
    }
    return entry.object;
  }

  function remember(key: string, object: Record<string, unknown> | null): void {
    if (UNCACHED.has(key.slice(0, key.indexOf('\u0000')))) return;
    cache.delete(key);
    cache.set(key, { object, expiresAt: now() + ttlMs });
    while (cache.size > maxEntries) cache.delete(cache.keys().next().value!);
  }

  /**
   * Loads what is neither cached nor being loaded, one query per (type, id or key); returns the loads this call
   * started or joined, by cache key (an uncached object is read from these, never from the cache).
   */
  function loadMissing(wanted: readonly Wanted[]): Map<string, Promise<Record<string, unknown> | null>> {
    const loads = new Map<string, Promise<Record<string, unknown> | null>>();
    const groups = new Map<string, Wanted[]>();
    for (const item of wanted) {
      const key = cacheKey(item);
      if (cached(key) !== undefined) continue;
      const loading = inFlight.get(key);
      if (loading) {
        loads.set(key, loading);
        continue;
      }
      const group = `${item.typeId}\u0000${item.by}`;
      const list = groups.get(group) ?? [];
      if (!list.some((other) => other.value === item.value)) list.push(item);
      groups.set(group, list);
    }
    for (const list of groups.values()) {
      const { typeId, by } = list[0]!;
      const query = load(typeId, by, list.map((item) => item.value));
      for (const item of list) {
        const key = cacheKey(item);
        const promise = query.then((found) => {
          const object = found.get(item.value) ?? null;
          remember(key, object);
          return object;
        });
        inFlight.set(key, promise);
        loads.set(key, promise);
        void promise.finally(() => inFlight.delete(key)).catch(() => {});
      }
    }
    return loads;
  }

  /** The object a target names: from the cache, a load this call started or joined, or a load of its own. */
  async function objectOf(target: Wanted, loads: Map<string, Promise<Record<string, unknown> | null>>): Promise<Record<string, unknown> | null> {
    const key = cacheKey(target);
    const hit = cached(key);
    return hit !== undefined ? hit : await (loads.get(key) ?? inFlight.get(key) ?? loadOne(target, key));
  }

  /**
   * A category with its ancestors expanded too (root first, as commercetools lists them), so a mapping can write a
   * category's path (`ancestors.obj.name` then `name`); the ancestors of every category of a batch in one query.
   */
  async function withAncestors(objects: ReadonlyArray<Record<string, unknown> | null>): Promise<Map<Record<string, unknown>, Record<string, unknown>>> {
    const categories = [...new Set(objects.filter((object): object is Record<string, unknown> => object !== null && Array.isArray(object.ancestors)))];
    const wanted = categories.flatMap((category) => (category.ancestors as unknown[]).flatMap((reference) => referenceTarget(reference) ?? []));
    const out = new Map<Record<string, unknown>, Record<string, unknown>>();
    if (wanted.length === 0) return out;
    const loads = loadMissing(wanted);
    for (const category of categories) {
      const ancestors = await Promise.all(
        (category.ancestors as unknown[]).map(async (reference) => {
          const target = referenceTarget(reference);
          const object = target ? await objectOf(target, loads) : null;
          return object !== null ? { ...(reference as object), obj: object } : reference;
        }),
      );
      out.set(category, { ...category, ancestors });
    }
    return out;
  }

  return {
    async expand(requests) {
      const wanted: Wanted[] = [];
      const perRequest = requests.map(({ resource, references }) =>
        references.flatMap((path) =>
          wantedAt(resource, path).map(({ at, target }) => {
            wanted.push(target);
            return { path: at, target };
          }),
        ),
      );
      if (wanted.length === 0) return requests.map((request) => request.resource);
      const loads = loadMissing(wanted);
      const found = await Promise.all(
        perRequest.map(async (targets) => {
          try {
            return await Promise.all(targets.map(({ target }) => objectOf(target, loads)));
          } catch (error) {
            return error instanceof Error ? error : new Error(String(error));
          }
        }),
      );
      let categories: Map<Record<string, unknown>, Record<string, unknown>>;
      try {
        categories = await withAncestors(found.flatMap((objects) => (objects instanceof Error ? [] : objects)));
      } catch (error) {
        const failure = error instanceof Error ? error : new Error(String(error));
        return requests.map(() => failure);
      }
      return requests.map(({ resource }, index) => {
        const objects = found[index]!;
        if (objects instanceof Error) return objects;
        let expanded = resource;
        perRequest[index]!.forEach(({ path, target }, at) => {
          const object = objects[at];
          if (object === null || object === undefined) return;
          expanded = withExpanded(expanded, path, target.typeId === 'category' ? (categories.get(object) ?? object) : object);
        });
        return expanded;
      });
    },
  };

  /** An entry that expired between loadMissing and its use. */
  async function loadOne(target: Wanted, key: string): Promise<Record<string, unknown> | null> {
    const object = (await load(target.typeId, target.by, [target.value])).get(target.value) ?? null;
    remember(key, object);
    return object;
  }
}

/**
 * What the reference at `path` points at, when it is an expandable reference not expanded yet; a list of references
 * (a product's categories) gives one per element, each at its own path.
 */
function wantedAt(resource: unknown, path: readonly PathStep[]): Array<{ at: readonly PathStep[]; target: Wanted }> {
  if (path[0] === CUSTOM_OBJECTS_STEP && path.length === 3) {
    const [, container, keyField] = path;
    const key = resource !== null && typeof resource === 'object' ? (resource as Record<string, unknown>)[keyField as string] : undefined;
    if (typeof container !== 'string' || (typeof key !== 'string' && typeof key !== 'number') || String(key) === '') return [];
    return [{ at: path, target: { typeId: 'key-value-document', by: 'key', value: `${container}/${String(key)}` } }];
  }
  // Through `[*]`, a filter or FLATTEN steps (`discountCodes[*].discountCode`): each reference where it is.
  if (path.some((step) => typeof step === 'object')) return concretePaths(resource, path).flatMap((at) => wantedAt(resource, at));
  const reference = readPath(resource, path);
  if (Array.isArray(reference)) return reference.flatMap((element, index) => (referenceTarget(element) ? [{ at: [...path, index], target: referenceTarget(element)! }] : []));
  const target = referenceTarget(reference);
  return target ? [{ at: path, target }] : [];
}

/** What a reference points at, when it is an expandable one not expanded yet. */
function referenceTarget(reference: unknown): Wanted | undefined {
  if (reference === null || typeof reference !== 'object') return undefined;
  const { typeId, id, key, obj } = reference as Record<string, unknown>;
  if (obj !== undefined || typeof typeId !== 'string' || !expandable.has(typeId)) return undefined;
  if (typeof id === 'string' && id !== '') return { typeId: typeId as ExpandableType, by: 'id', value: id };
  if (typeof key === 'string' && key !== '') return { typeId: typeId as ExpandableType, by: 'key', value: key };
  return undefined;
}

/** A copy of `root` with `obj` set on the reference at `path`; only the objects along the path are copied. */
function withExpanded(root: unknown, path: readonly PathStep[], object: Record<string, unknown>): unknown {
  const copy = (value: unknown): Record<string | number, unknown> => (Array.isArray(value) ? [...(value as unknown[])] : { ...(value as object) }) as Record<string | number, unknown>;
  const top = copy(root);
  let current = top;
  for (const step of path) {
    const next = copy(current[step as string | number]);
    current[step as string | number] = next;
    current = next;
  }
  current.obj = object;
  return top;
}
