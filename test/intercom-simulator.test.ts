// The Intercom simulator as a client meets it over HTTP: the token and the optional version header, requests
// checked against the official 2.14 description (unknown, mistyped and missing parameters answered with Intercom's
// error list), contacts with unique external ids (409 naming the existing contact, archived or not) and shared
// emails, archive and unarchive, a search index that lags,
// custom attributes that must exist, events deduplicated on name + contact + created_at, lead-into-user merges,
// rate limiting in 10-second windows with the real headers, injected faults, notes, and responses that conform.
import { afterEach, describe, expect, it } from 'vitest';
import { INTERCOM_VERSION, startIntercomSimulator, type IntercomSimulator } from '../src/sandbox/intercom/simulator.ts';

const TOKEN = 'test-intercom-token';
let sim: IntercomSimulator | undefined;
afterEach(async () => {
  expect(sim?.bugs ?? []).toEqual([]);
  await sim?.close();
  sim = undefined;
});

let clock = 1_800_000_000_000;
async function start(options: { searchLagMs?: number; limitPerMinute?: number } = {}): Promise<IntercomSimulator> {
  sim = await startIntercomSimulator({ token: TOKEN, now: () => clock, ...options });
  return sim;
}

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const response = await fetch(`${sim!.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'intercom-version': INTERCOM_VERSION, 'content-type': 'application/json', ...headers },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), headers: response.headers };
}

describe('the Intercom simulator', () => {
  it('requires the bearer token; takes the app\'s version without an Intercom-Version header and refuses an unknown one', async () => {
    await start();
    const noToken = await call('GET', '/data_attributes', undefined, { authorization: 'Bearer wrong' });
    expect(noToken.status).toBe(401);
    expect(noToken.body).toMatchObject({ type: 'error.list', errors: [{ code: 'unauthorized', message: 'Access Token Invalid' }] });
    // No rate-limit headers without valid credentials.
    expect(noToken.headers.get('x-ratelimit-limit')).toBeNull();
    const noVersion = await fetch(`${sim!.url}/contacts`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ role: 'user', external_id: 'v1' }) });
    expect(noVersion.status).toBe(200);
    expect(await noVersion.json()).toMatchObject({ type: 'contact', external_id: 'v1' });
    const unknown = await call('GET', '/data_attributes', undefined, { 'intercom-version': '7.3' });
    expect(unknown).toMatchObject({ status: 400, body: { type: 'error.list', errors: [{ code: 'intercom_version_invalid', message: 'The requested version could not be found' }] } });
    const other = await call('GET', '/data_attributes', undefined, { 'intercom-version': '2.11' });
    expect(other).toMatchObject({ status: 400, body: { errors: [{ code: 'intercom_version_invalid', message: 'Requested version 2.11 is not served by this simulator (it implements 2.14)' }] } });
    await sim!.close();
    // An app set to another version: a request without the header is served that version.
    sim = await startIntercomSimulator({ token: TOKEN, now: () => clock, appVersion: '2.11' });
    const noHeader = await fetch(`${sim.url}/data_attributes`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(noHeader.status).toBe(400);
    expect(((await noHeader.json()) as { errors: Array<{ message: string }> }).errors[0]!.message).toBe('Requested version 2.11 is not served by this simulator (it implements 2.14)');
    expect((await call('GET', '/data_attributes')).status).toBe(200);
  });

  it('refuses unknown, mistyped and missing parameters against the 2.14 description', async () => {
    await start();
    const unknown = await call('POST', '/contacts', { role: 'user', external_id: 'c1', favourite_colour: 'blue' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.errors).toEqual([{ code: 'parameter_invalid', message: 'favourite_colour is not a parameter of this request', field: 'favourite_colour' }]);
    const mistyped = await call('POST', '/contacts', { role: 'user', external_id: 42 });
    expect(mistyped.body.errors).toEqual([{ code: 'parameter_invalid', message: 'external_id must be a string', field: 'external_id' }]);
    const missing = await call('POST', '/events', { event_name: 'placed-order', user_id: 'c1' });
    expect(missing.status).toBe(400);
    expect(JSON.stringify(missing.body.errors)).toContain('created_at is required');
    expect(sim!.stats.invalid).toBe(3);
  });

  it('keeps external ids unique, names the existing contact in the 409, and searches only after the lag', async () => {
    await start({ searchLagMs: 60_000 });
    const created = await call('POST', '/contacts', { role: 'user', external_id: 'c1', email: 'ada@example.com', name: 'Ada' });
    expect(created.status).toBe(200);
    const id = created.body.id as string;
    const again = await call('POST', '/contacts', { role: 'user', external_id: 'c1' });
    expect(again.status).toBe(409);
    expect(again.body.errors).toEqual([{ code: 'conflict', message: `A contact matching those details already exists with id=${id}` }]);
    // Without an external_id a user is identified by its email.
    const byEmail = await call('POST', '/contacts', { role: 'user', email: 'ADA@example.com' });
    expect(byEmail.status).toBe(409);

    const search = () => call('POST', '/contacts/search', { query: { field: 'email', operator: '=', value: 'ada@example.com' } });
    expect((await search()).body.total_count).toBe(0);
    clock += 60_000;
    expect((await search()).body).toMatchObject({ type: 'list', total_count: 1, data: [{ id, external_id: 'c1' }] });
    expect((await call('GET', '/contacts/find_by_external_id/c1')).body.id).toBe(id);
  });

  it('makes two users of one email with different external ids, and a new lead for every lead created with one email', async () => {
    await start();
    const first = await call('POST', '/contacts', { role: 'user', external_id: 'c-a', email: 'shared@example.com', name: 'Ann' });
    const second = await call('POST', '/contacts', { role: 'user', external_id: 'c-b', email: 'shared@example.com', name: 'Ben' });
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(second.body.id).not.toBe(first.body.id);
    const leads = [await call('POST', '/contacts', { role: 'lead', email: 'shared@example.com' }), await call('POST', '/contacts', { role: 'lead', email: 'shared@example.com' })];
    expect(leads.map((lead) => lead.status)).toEqual([200, 200]);
    expect(leads[1]!.body.id).not.toBe(leads[0]!.body.id);
    expect([...sim!.workspace.contacts.values()].map((c) => `${c.role}:${c.external_id}:${c.name}`)).toEqual(['user:c-a:Ann', 'user:c-b:Ben', 'lead:null:null', 'lead:null:null']);
    // A user may take an email another user has, not an external_id another contact has.
    expect((await call('PUT', `/contacts/${leads[0]!.body.id as string}`, { email: 'shared@example.com' })).status).toBe(200);
    expect(await call('PUT', `/contacts/${second.body.id as string}`, { external_id: 'c-a' })).toMatchObject({ status: 409, body: { errors: [{ code: 'conflict', message: `A contact matching those details already exists with id=${first.body.id as string}` }] } });
  });

  it('answers an archived contact as Intercom does: 404 to reads and updates, its own 409 to a create, back with unarchive', async () => {
    await start();
    const created = await call('POST', '/contacts', { role: 'user', external_id: 'c-arch', email: 'arch@example.com' });
    const id = created.body.id as string;
    expect(await call('POST', `/contacts/${id}/archive`)).toMatchObject({ status: 200, body: { type: 'contact', id, external_id: 'c-arch', archived: true } });
    expect((await call('GET', `/contacts/${id}`)).status).toBe(404);
    expect(await call('PUT', `/contacts/${id}`, { name: 'Arch' })).toMatchObject({ status: 404, body: { errors: [{ code: 'not_found', message: 'User Not Found' }] } });
    expect((await call('GET', '/contacts/find_by_external_id/c-arch')).status).toBe(404);
    expect((await call('POST', '/events', { event_name: 'placed-order', created_at: 1_790_000_000, id })).status).toBe(404);
    const conflict = await call('POST', '/contacts', { role: 'user', external_id: 'c-arch', email: 'arch@example.com' });
    expect(conflict).toMatchObject({ status: 409, body: { type: 'error.list', errors: [{ code: 'conflict', message: `An archived contact matching those details already exists with id=${id}` }] } });

    expect(await call('POST', `/contacts/${id}/unarchive`)).toMatchObject({ status: 200, body: { type: 'contact', id, external_id: 'c-arch', archived: false } });
    expect(await call('PUT', `/contacts/${id}`, { name: 'Arch' })).toMatchObject({ status: 200, body: { id, name: 'Arch' } });
    expect(await call('POST', '/contacts/no-such-contact/unarchive')).toMatchObject({ status: 404, body: { errors: [{ code: 'not_found', message: 'Contact Not Found' }] } });
    // An archived contact can still be deleted for good.
    await call('POST', `/contacts/${id}/archive`);
    expect(await call('DELETE', `/contacts/${id}`)).toMatchObject({ status: 200, body: { id, deleted: true } });
    expect(sim!.workspace.contacts.has(id)).toBe(false);
  });

  it('takes custom attributes only once they exist, with values of their type', async () => {
    await start();
    const contact = await call('POST', '/contacts', { role: 'user', external_id: 'c2' });
    const before = await call('PUT', `/contacts/${contact.body.id as string}`, { custom_attributes: { tier: 'gold' } });
    expect(before.status).toBe(400);
    expect(before.body.errors).toEqual([{ code: 'parameter_invalid', message: "Custom attribute 'tier' does not exist" }]);
    expect((await call('POST', '/data_attributes', { name: 'tier', model: 'contact', data_type: 'string' })).status).toBe(200);
    expect((await call('POST', '/data_attributes', { name: 'tier', model: 'contact', data_type: 'string' })).status).toBe(400);
    expect((await call('POST', '/data_attributes', { name: 'orders', model: 'contact', data_type: 'integer' })).status).toBe(200);
    const wrongType = await call('PUT', `/contacts/${contact.body.id as string}`, { custom_attributes: { orders: 'many' } });
    expect(wrongType.body.errors).toEqual([{ code: 'parameter_invalid', message: "Custom attribute 'orders' must be of type integer" }]);
    const updated = await call('PUT', `/contacts/${contact.body.id as string}`, { custom_attributes: { tier: 'gold', orders: 3 } });
    expect(updated.body.custom_attributes).toEqual({ tier: 'gold', orders: 3 });
    const listed = await call('GET', '/data_attributes?model=contact');
    expect((listed.body.data as Array<{ name: string; data_type: string }>).map((a) => `${a.name}:${a.data_type}`)).toEqual(['tier:string', 'orders:integer']);
  });

  it('deduplicates events on name, contact and created_at, and moves a lead\'s events to the user it is merged into', async () => {
    await start();
    const user = await call('POST', '/contacts', { role: 'user', external_id: 'c3', email: 'grace@example.com' });
    const lead = await call('POST', '/contacts', { role: 'lead', email: 'grace@example.com' });
    expect(lead.status).toBe(200);
    const event = { event_name: 'placed-order', created_at: 1_790_000_000, id: lead.body.id as string, metadata: { order_number: 'ON-1' } };
    for (let i = 0; i < 5; i += 1) expect((await call('POST', '/events', event)).status).toBe(202);
    expect((await call('POST', '/events', { ...event, created_at: 1_790_000_001 })).status).toBe(202);
    expect(sim!.workspace.events).toHaveLength(2);

    const merged = await call('POST', '/contacts/merge', { from: lead.body.id, into: user.body.id });
    expect(merged.status).toBe(200);
    expect(merged.body.id).toBe(user.body.id);
    expect(sim!.workspace.events.map((e) => e.contactId)).toEqual([user.body.id, user.body.id]);
    expect((await call('GET', `/contacts/${lead.body.id as string}`)).status).toBe(404);
  });

  it('accepts the documented metadata example with its types, and more than 10 keys, keeping the first 10 as sent', async () => {
    await start();
    await call('POST', '/contacts', { role: 'user', external_id: '314159', email: 'ex@example.com' });
    // The example of "Event Metadata Types" (developers.intercom.com), as Intercom documents it.
    const example = {
      event_name: 'placed-order',
      created_at: 1389913941,
      user_id: '314159',
      metadata: { order_date: 1392036272, stripe_invoice: 'inv_3434343434', order_number: { value: '3434-3434', url: 'https://example.org/orders/3434-3434' }, price: { currency: 'usd', amount: 2999 } },
    };
    expect((await call('POST', '/events', example)).status).toBe(202);
    expect(sim!.workspace.events[0]).toMatchObject({ metadata: example.metadata, metadataTypes: { order_date: 'date', stripe_invoice: 'string', order_number: 'rich_link', price: 'monetary_amount' } });

    const many = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`key_${i + 1}`, i % 2 === 0 ? `text ${i + 1}` : i + 1]));
    const answered = await call('POST', '/events', { event_name: 'many-keys', created_at: 1389913942, user_id: '314159', metadata: { ...many, link: 'https://example.org/x' } });
    expect(answered.status).toBe(202);
    const kept = sim!.workspace.events[1]!;
    expect(Object.keys(kept.metadata)).toEqual(Object.keys(many).slice(0, 10));
    expect(kept.metadataTypes).toMatchObject({ key_1: 'string', key_2: 'number' });
    expect(sim!.stats.invalid).toBe(0);
    // The rest of the body is still checked against the description.
    expect((await call('POST', '/events', { event_name: 'x', created_at: '1389913943', user_id: '314159' })).status).toBe(400);
  });

  it('removes a contact\'s phone and a custom attribute given null, as the update\'s nullable fields say', async () => {
    await start();
    expect((await call('POST', '/data_attributes', { name: 'tier', model: 'contact', data_type: 'string' })).status).toBe(200);
    const contact = await call('POST', '/contacts', { role: 'user', external_id: 'c8', phone: '+4930123456', custom_attributes: { tier: 'gold' } });
    expect(contact.body).toMatchObject({ phone: '+4930123456', custom_attributes: { tier: 'gold' } });
    const cleared = await call('PUT', `/contacts/${contact.body.id as string}`, { phone: null, custom_attributes: { tier: null } });
    expect(cleared.status).toBe(200);
    expect(cleared.body).toMatchObject({ phone: null, custom_attributes: { tier: null } });
    expect((await call('GET', `/contacts/${contact.body.id as string}`)).body).toMatchObject({ phone: null, custom_attributes: { tier: null } });
  });

  it('limits calls per 10-second window with the per-window headers and 429 body Intercom documents', async () => {
    clock = 1_800_000_000_000;
    await start({ limitPerMinute: 60 });
    const answers = [];
    for (let i = 0; i < 11; i += 1) answers.push(await call('GET', '/data_attributes'));
    expect(answers.slice(0, 10).every((a) => a.status === 200)).toBe(true);
    // 60 a minute is 10 per 10-second window: the headers count the window.
    expect(answers[0]!.headers.get('x-ratelimit-limit')).toBe('10');
    expect(answers[0]!.headers.get('x-ratelimit-remaining')).toBe('9');
    expect(answers[9]!.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(answers[0]!.headers.get('x-ratelimit-reset')).toBe(String((clock + 10_000) / 1000));
    expect(answers[10]!.status).toBe(429);
    expect(answers[10]!.body).toMatchObject({ type: 'error.list', errors: [{ code: 'rate_limit_exceeded', message: 'Exceeded rate limit of 10 in 10_seconds' }] });
    expect(answers[10]!.headers.get('x-ratelimit-limit')).toBe('10');
    expect(answers[10]!.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(Number(answers[10]!.headers.get('x-ratelimit-reset'))).toBe(Math.ceil((clock + 10_000) / 1000));
    clock += 10_000;
    const next = await call('GET', '/data_attributes');
    expect(next.status).toBe(200);
    expect(next.headers.get('x-ratelimit-remaining')).toBe('9');
    expect(next.headers.get('x-ratelimit-reset')).toBe(String((clock + 10_000) / 1000));
    expect(sim!.stats.rateLimited).toBe(1);
  });

  it('answers injected faults, and tags and companies (attached and detached) as described', async () => {
    await start();
    sim!.faults.push({ kind: 'status', status: 503 });
    expect((await call('GET', '/data_attributes')).status).toBe(503);
    const contact = await call('POST', '/contacts', { role: 'user', external_id: 'c4' });
    const tag = await call('POST', '/tags', { name: 'VIP' });
    expect(tag.body).toMatchObject({ type: 'tag', name: 'VIP' });
    expect((await call('POST', `/contacts/${contact.body.id as string}/tags`, { id: tag.body.id })).status).toBe(200);
    const company = await call('POST', '/companies', { company_id: 'bu-acme', name: 'ACME' });
    expect((await call('POST', `/contacts/${contact.body.id as string}/companies`, { id: company.body.id })).status).toBe(200);
    const shown = await call('GET', `/contacts/${contact.body.id as string}`);
    expect(shown.body).toMatchObject({ tags: { total_count: 1 }, companies: { total_count: 1 } });
    const detached = await call('DELETE', `/contacts/${contact.body.id as string}/companies/${company.body.id as string}`);
    expect(detached).toMatchObject({ status: 200, body: { type: 'company', id: company.body.id, company_id: 'bu-acme' } });
    expect((await call('GET', `/contacts/${contact.body.id as string}`)).body).toMatchObject({ companies: { total_count: 0 } });
    expect(await call('DELETE', `/contacts/${contact.body.id as string}/companies/no-such-company`)).toMatchObject({ status: 404, body: { errors: [{ code: 'company_not_found' }] } });
    expect((await call('DELETE', `/contacts/${contact.body.id as string}/tags/${tag.body.id as string}`)).status).toBe(200);
    expect((await call('POST', `/contacts/${contact.body.id as string}/archive`)).body).toMatchObject({ archived: true });
  });

  it('keeps notes on a contact by the workspace\'s admin, newest first, and refuses an unknown contact or admin', async () => {
    await start();
    const contact = await call('POST', '/contacts', { role: 'user', external_id: 'c5' });
    const id = contact.body.id as string;
    const first = await call('POST', `/contacts/${id}/notes`, { body: '<p>Called about order ON-1</p>' });
    expect(first).toMatchObject({ status: 200, body: { type: 'note', body: '<p>Called about order ON-1</p>', contact: { type: 'contact', id }, author: { type: 'admin' } } });
    await call('POST', `/contacts/${id}/notes`, { body: 'Refund approved', admin_id: (first.body.author as { id: string }).id });
    const listed = await call('GET', `/contacts/${id}/notes`);
    expect(listed.body).toMatchObject({ type: 'list', total_count: 2 });
    expect((listed.body.data as Array<{ body: string }>).map((note) => note.body)).toEqual(['Refund approved', '<p>Called about order ON-1</p>']);
    expect(await call('POST', '/contacts/no-such-contact/notes', { body: 'x' })).toMatchObject({ status: 404, body: { type: 'error.list', errors: [{ code: 'not_found', message: 'User Not Found' }] } });
    expect((await call('POST', `/contacts/${id}/notes`, { body: 'x', admin_id: '1' })).status).toBe(404);
    expect((await call('POST', `/contacts/${id}/notes`, {})).status).toBe(400);
    expect(sim!.workspace.notes).toHaveLength(2);
  });
});
