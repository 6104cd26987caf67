// The identity table (identities): per destination, every person ctbridge has sent something about, the
// destination's id for them once it returned one, and the merges of guests into registered customers. A guest
// whose email belongs to a registered customer (in the guest's store, or a customer of every store) is that
// customer; a merged guest is who it was merged into. Two customers sharing an email stay two people.
import type { Kysely, Transaction } from 'kysely';
import type { Database, IdentitiesTable } from '../store/schema.ts';
import type { Person } from './person.ts';

export interface ResolvedPerson {
  /** The person's key after merges (a guest's may be a customer's). */
  key: string;
  destinationId: string | undefined;
}

export interface GuestMerge {
  guest: IdentitiesTable;
  into: Person;
  intoDestinationId: string | undefined;
}

type Executor = Kysely<Database> | Transaction<Database>;

const CHUNK = 500;

async function rowsWhere(db: Executor, destination: string, column: 'person' | 'email_digest', values: readonly string[], kind?: 'customer' | 'guest'): Promise<IdentitiesTable[]> {
  const unique = [...new Set(values)];
  const rows: IdentitiesTable[] = [];
  for (let i = 0; i < unique.length; i += CHUNK) {
    let query = db.selectFrom('identities').selectAll().where('destination', '=', destination).where(column, 'in', unique.slice(i, i + CHUNK));
    if (kind) query = query.where('kind', '=', kind);
    rows.push(...(await query.execute()));
  }
  return rows;
}

/** Whether a registered customer in `customerStore` ('' = every store) is the same person as a guest of `guestStore`. */
const sameScope = (customerStore: string, guestStore: string) => customerStore === '' || customerStore === guestStore;

export class Identities {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** Who each person is at the destination now, keyed by their own key. */
  async resolve(destination: string, persons: readonly Person[]): Promise<Map<string, ResolvedPerson>> {
    const resolved = new Map<string, ResolvedPerson>();
    if (persons.length === 0) return resolved;
    const known = new Map((await rowsWhere(this.#db, destination, 'person', persons.map((p) => p.key))).map((row) => [row.person, row]));
    // Guests not merged yet whose email a registered customer has.
    const guests = persons.filter((p) => p.kind === 'guest' && p.emailDigest !== undefined && !known.get(p.key)?.merged_into);
    const customersByEmail = new Map<string, IdentitiesTable[]>();
    for (const row of await rowsWhere(this.#db, destination, 'email_digest', guests.map((g) => g.emailDigest!), 'customer')) {
      customersByEmail.set(row.email_digest!, [...(customersByEmail.get(row.email_digest!) ?? []), row]);
    }
    const targets = new Set<string>();
    const effective = new Map<string, string>();
    for (const person of persons) {
      const row = known.get(person.key);
      let key = row?.merged_into ?? person.key;
      if (key === person.key && person.kind === 'guest' && person.emailDigest !== undefined) {
        const candidates = (customersByEmail.get(person.emailDigest) ?? []).filter((c) => sameScope(c.store_key, person.storeKey));
        // A customer of the guest's own store before a customer of every store.
        const customer = candidates.find((c) => c.store_key === person.storeKey) ?? candidates[0];
        if (customer) key = customer.person;
      }
      effective.set(person.key, key);
      if (key !== person.key) targets.add(key);
    }
    const targetRows = new Map((await rowsWhere(this.#db, destination, 'person', [...targets])).map((row) => [row.person, row]));
    for (const person of persons) {
      const key = effective.get(person.key)!;
      const row = key === person.key ? known.get(key) : targetRows.get(key);
      resolved.set(person.key, { key, destinationId: row?.destination_id ?? undefined });
    }
    return resolved;
  }

  /** Unmerged guests with the email of these registered customers, in their scope. */
  async guestsToMerge(destination: string, customers: ReadonlyArray<{ person: Person; destinationId: string | undefined }>): Promise<GuestMerge[]> {
    const withEmail = customers.filter((c) => c.person.kind === 'customer' && c.person.emailDigest !== undefined);
    if (withEmail.length === 0) return [];
    const guests = (await rowsWhere(this.#db, destination, 'email_digest', withEmail.map((c) => c.person.emailDigest!), 'guest')).filter((row) => row.merged_into === null);
    return guests.flatMap((guest) => {
      const into = withEmail.find((c) => c.person.emailDigest === guest.email_digest && sameScope(c.person.storeKey, guest.store_key));
      return into ? [{ guest, into: into.person, intoDestinationId: into.destinationId }] : [];
    });
  }

  /** Records the persons of a batch (their email digest and, when the destination returned one, its id). */
  async upsert(trx: Executor, destination: string, persons: ReadonlyArray<{ person: Person; destinationId: string | undefined }>, now: number): Promise<void> {
    const rows = new Map<string, IdentitiesTable>();
    for (const { person, destinationId } of persons) {
      rows.set(person.key, { destination, person: person.key, kind: person.kind, store_key: person.storeKey, email_digest: person.emailDigest ?? null, destination_id: destinationId ?? null, merged_into: null, updated_at: now });
    }
    // In key order, as every writer of this table does (PostgreSQL deadlocks otherwise).
    const sorted = [...rows.values()].sort((a, b) => (a.person < b.person ? -1 : a.person > b.person ? 1 : 0));
    for (let i = 0; i < sorted.length; i += CHUNK) {
      await trx
        .insertInto('identities')
        .values(sorted.slice(i, i + CHUNK))
        .onConflict((oc) =>
          oc.columns(['destination', 'person']).doUpdateSet((eb) => ({
            email_digest: eb.fn.coalesce(eb.ref('excluded.email_digest'), eb.ref('identities.email_digest')),
            destination_id: eb.fn.coalesce(eb.ref('excluded.destination_id'), eb.ref('identities.destination_id')),
            store_key: eb.ref('excluded.store_key'),
            updated_at: eb.ref('excluded.updated_at'),
          })),
        )
        .execute();
    }
  }

  /** The guests merged into each of these customers (person keys), at the destination. */
  async mergedGuests(destination: string, customers: readonly string[]): Promise<Map<string, Set<string>>> {
    const merged = new Map<string, Set<string>>();
    const unique = [...new Set(customers)];
    for (let i = 0; i < unique.length; i += CHUNK) {
      const rows = await this.#db.selectFrom('identities').select(['person', 'merged_into']).where('destination', '=', destination).where('merged_into', 'in', unique.slice(i, i + CHUNK)).execute();
      for (const row of rows) {
        const guests = merged.get(row.merged_into!) ?? new Set<string>();
        guests.add(row.person);
        merged.set(row.merged_into!, guests);
      }
    }
    return merged;
  }

  /** The customer (person key) each of these guests was merged into, at the destination; unmerged guests are missing. */
  async mergedInto(destination: string, guests: readonly string[]): Promise<Map<string, string>> {
    const rows = await rowsWhere(this.#db, destination, 'person', guests, 'guest');
    return new Map(rows.flatMap((row) => (row.merged_into === null ? [] : [[row.person, row.merged_into] as const])));
  }

  async markMerged(trx: Executor, destination: string, guest: string, into: string, now: number): Promise<void> {
    await trx.updateTable('identities').set({ merged_into: into, updated_at: now }).where('destination', '=', destination).where('person', '=', guest).execute();
  }

  /** Forgets a customer everywhere, and the guests merged into them (erasure); returns how many rows. */
  async erase(trx: Executor, customerId: string): Promise<number> {
    const person = `customer:${customerId}`;
    const result = await trx.deleteFrom('identities').where((eb) => eb.or([eb('person', '=', person), eb('merged_into', '=', person)])).executeTakeFirst();
    return Number(result.numDeletedRows);
  }
}
