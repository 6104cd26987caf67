// The Messages API for the commercetools emulator, which has none (@labdigital/commercetools-mock 4.4.0 neither
// records Messages nor serves /{projectKey}/messages): enough of it for scheduled sync to find deletions the way it
// does against commercetools.
//
// What commercetools does (https://docs.commercetools.com/api/projects/messages): every change to a resource
// records Messages, queryable at `GET /{projectKey}/messages` (where, sort, limit, offset, withTotal, as every
// query endpoint) and `GET /{projectKey}/messages/{id}` — only while the project has messages enabled (Project
// `messages.enabled`, false for a new project, set with the changeMessagesConfiguration update action, which the
// emulator supports). Messages recorded while it was off are never there. They are deleted
// `messages.deleteDaysAfterCreation` days (15 by default) after their creation. The query is eventually
// consistent: a Message may show up a little after the change it is about, so readers poll with an overlap.
// Deleting a customer records a CustomerDeleted Message, deleting an order an OrderDeleted one carrying the
// deleted `order`, with `resourceUserProvidedIdentifiers` the resource's key (customerNumber, orderNumber) where it
// has one. The API reference does not say which `resourceVersion` a deletion's Message has (the ResourceDeleted
// notification carries the "last seen version"); this takes the deleted resource's version + 1, a deletion being a
// change of it. ctbridge reads either the same way: a deletion at or above the version it synced.
//
// Only those two deletions are recorded here: they are what the sandbox and the tests delete. Each Message gets
// the deleted resource's version as `sequenceNumber`, where commercetools counts the resource's Messages (no other
// Message of it is recorded here). Messages are kept in the emulator's own storage under a type of their own, so
// querying them is the emulator's predicate and sort code (with `sort` honoured by emulator-queries.ts); the
// retention is applied when they are queried, against the wall clock.
import { randomUUID } from 'node:crypto';
import type { CommercetoolsMock } from '@labdigital/commercetools-mock';

const MESSAGE = 'message';
const DAY_MS = 86_400_000;

interface StorageMapLike {
  set(id: string, value: unknown): void;
  delete(id: string): void;
  values(): Iterable<unknown>;
}

interface MessageStorage {
  forProjectKey(projectKey: string): Promise<Record<string, StorageMapLike | undefined>>;
  getProject(projectKey: string): Promise<{ messages: { enabled: boolean; deleteDaysAfterCreation?: number } }>;
  add(projectKey: string, typeId: string, value: Record<string, unknown>): Promise<unknown>;
  get(projectKey: string, typeId: string, id: string): Promise<unknown>;
  query(projectKey: string, typeId: string, params: Record<string, unknown>): Promise<Record<string, unknown>>;
}

type Repository = { delete(context: { projectKey: string }, id: string, params?: unknown): Promise<Record<string, unknown> | null> };

/** Deletions of customers and orders (what commercetools calls them, and what each Message carries besides). */
const DELETIONS = [
  { typeId: 'customer', type: 'CustomerDeleted', identifiers: ['key', 'customerNumber'], carries: undefined },
  { typeId: 'order', type: 'OrderDeleted', identifiers: ['orderNumber'], carries: 'order' },
] as const;

export function addMessagesApi(mock: CommercetoolsMock, projectKey: string): void {
  const project = mock.project(projectKey);
  const storage = project.config.storage as unknown as MessageStorage;
  let ready: Promise<void> | undefined;
  // A storage map of the emulator's own kind, beside its resource types, so its query code serves Messages.
  const ensureMap = () =>
    (ready ??= storage.forProjectKey(projectKey).then((maps) => {
      const Map = (maps.customer as object).constructor as new () => StorageMapLike;
      maps[MESSAGE] ??= new Map();
    }));

  for (const deletion of DELETIONS) {
    const repository = project.getRepository(deletion.typeId) as unknown as Repository;
    const remove = repository.delete.bind(repository);
    repository.delete = async (context, id, params) => {
      const deleted = await remove(context, id, params);
      if (deleted && (await storage.getProject(context.projectKey)).messages.enabled) {
        await ensureMap();
        const now = new Date().toISOString();
        const version = typeof deleted.version === 'number' ? deleted.version : 0;
        const identifiers = Object.fromEntries(deletion.identifiers.filter((name) => typeof deleted[name] === 'string').map((name) => [name, deleted[name]]));
        const clientId = { clientId: 'emulator', isPlatformClient: false };
        await storage.add(context.projectKey, MESSAGE, {
          id: randomUUID(),
          version: 1,
          sequenceNumber: version,
          resource: { typeId: deletion.typeId, id },
          resourceVersion: version + 1,
          ...(Object.keys(identifiers).length > 0 && { resourceUserProvidedIdentifiers: identifiers }),
          type: deletion.type,
          ...(deletion.carries && { [deletion.carries]: deleted }),
          createdAt: now,
          lastModifiedAt: now,
          createdBy: clientId,
          lastModifiedBy: clientId,
        });
      }
      return deleted;
    };
  }

  const unauthorized = { statusCode: 401, message: 'invalid_token', errors: [{ code: 'invalid_token', message: 'invalid_token' }] };
  const authorized = (header: string | undefined) => {
    const token = /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1];
    return token !== undefined && mock.authStore().validateToken(token);
  };
  /** Messages past the project's retention are gone, as commercetools deletes them. */
  const expire = async () => {
    const { messages } = await storage.getProject(projectKey);
    const cutoff = Date.now() - (messages.deleteDaysAfterCreation ?? 15) * DAY_MS;
    const map = (await storage.forProjectKey(projectKey))[MESSAGE];
    for (const message of [...(map?.values() ?? [])] as Array<{ id: string; createdAt: string }>) if (Date.parse(message.createdAt) < cutoff) map?.delete(message.id);
  };

  mock.app.get('/:projectKey/messages', async (request, reply) => {
    if (!authorized(request.headers.authorization)) return reply.code(401).send(unauthorized);
    const { projectKey: key } = request.params as { projectKey: string };
    if (key !== projectKey) return reply.code(404).send({ statusCode: 404, message: `The project '${key}' does not exist.`, errors: [{ code: 'ResourceNotFound', message: `The project '${key}' does not exist.` }] });
    await ensureMap();
    await expire();
    const query = request.query as Record<string, unknown>;
    const list = (value: unknown) => (typeof value === 'string' ? [value] : Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined);
    const first = (value: unknown) => list(value)?.[0];
    const params: Record<string, unknown> = { where: list(query.where), limit: first(query.limit) === undefined ? undefined : Number(first(query.limit)), offset: first(query.offset) === undefined ? undefined : Number(first(query.offset)) };
    // `sort`, `withTotal` and predicate variables, as emulator-queries.ts carries them past the services.
    for (const [name, value] of Object.entries(query)) if (name.startsWith('var.')) params[name] = value;
    try {
      return reply.code(200).send(await storage.query(key, MESSAGE, params));
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return reply.code(400).send({ statusCode: 400, message, errors: [{ code: 'InvalidInput', message }] });
    }
  });

  mock.app.get('/:projectKey/messages/:id', async (request, reply) => {
    if (!authorized(request.headers.authorization)) return reply.code(401).send(unauthorized);
    const { projectKey: key, id } = request.params as { projectKey: string; id: string };
    await ensureMap();
    await expire();
    const message = key === projectKey ? await storage.get(key, MESSAGE, id) : null;
    if (!message) return reply.code(404).send({ statusCode: 404, message: `The Resource with ID '${id}' was not found.`, errors: [{ code: 'ResourceNotFound', message: `The Resource with ID '${id}' was not found.` }] });
    return reply.code(200).send(message);
  });
}
