// `ctbridge mapping preview` as an integration engineer runs it: the real CLI on the official commercetools
// examples, the payload, the delta against a previous payload and the personal fields with their form, and the
// usage errors (exit status 2) for a wrong destination, record or input.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { customerMessage } from './support/harness.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'bin', 'ctbridge.js');
const examples = fileURLToPath(new URL('../spec/commercetools/resources/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ctbridge-preview-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = join(dir, 'ctbridge.yaml');
writeFileSync(
  config,
  `
commercetools: { projectKey: p, authUrl: 'http://127.0.0.1:1/auth', apiUrl: 'http://127.0.0.1:1/api', clientId: id, clientSecret: secret }
server: { ingest: { auth: { type: bearer, token: a-token-of-enough-length } } }
pii:
  hashKey: \${HASH_KEY}
destinations:
  - name: crm
    type: http
    url: http://127.0.0.1:1/records
    records:
      order:
        fields:
          number: { first: [orderNumber, id] }
          email: { path: customerEmail, pipe: [hash] }
          total: { path: totalPrice, pipe: [money] }
          status: { path: orderState, pipe: [{ map: { table: { Open: new, Complete: done } } }] }
          quantity: { path: "lineItems[0].quantity", pipe: [{ default: { value: 0 } }] }
        when:
          - match: { store: uk-store }
            fields: { market: { value: UK } }
            omit: [quantity]
            target: { url: "http://127.0.0.1:1/uk" }
      payment:
        fields:
          amount: { path: amountPlanned, pipe: [{ money: { as: object } }] }
          method: { path: paymentMethodInfo.name, pipe: [localized] }
          customer: customer.id
      cart:
        fields:
          items: { path: "lineItems[*].quantity", pipe: [sum] }
          total: { path: totalPrice, pipe: [money] }
          skus: { jsonata: "$join(lineItems.variant.sku, ',')" }
      contact:
        source: customer
        fields:
          email: { path: email, pipe: [mask] }
          name: { template: "{{firstName}} {{lastName}}" }
          verified: isEmailVerified
      buyer:
        source: customer
        fields:
          orders: { path: "$orders[*]", pipe: [count] }
          lifetime: { path: "$orders[*].totalPrice", pipe: [sumByCurrency] }
          last: { path: "$orders[*].id", pipe: [last] }
`,
);

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

function preview(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, 'mapping', 'preview', '--config', config, ...args], { cwd: root, env: { PATH: process.env.PATH ?? '', HASH_KEY: 'a-hash-key-of-16-chars-or-more' } }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

describe('ctbridge mapping preview', () => {
  it('maps the official order example, compares it with a previous payload and names the personal fields', async () => {
    const previous = join(dir, 'previous.json');
    writeFileSync(previous, JSON.stringify({ number: '92f5a867-bf19-47ab-982c-6720a03a3921', total: '10.00', status: 'open', quantity: 1 }));
    const run = await preview(['--destination', 'crm', '--record', 'order', '--input', join(examples, 'order.example.json'), '--previous', previous, '--json']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout) as { payload: Record<string, unknown>; changed: string[]; personal: unknown[] };
    expect(result.payload).toEqual({ number: '92f5a867-bf19-47ab-982c-6720a03a3921', email: null, total: '10.00', status: 'new', quantity: 1 });
    expect(result.changed).toEqual(['email', 'status']);
    expect(result.personal).toEqual([{ field: 'email', class: 'email', form: 'hashed' }]);
  });

  it('reads the resource a Message carries, and says in text what a sync would send', async () => {
    const input = join(dir, 'customer-created.json');
    const customer = JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(join(examples, 'customer.example.json'), 'utf8'))) as Record<string, unknown>;
    writeFileSync(input, JSON.stringify(customerMessage(customer, 'CustomerCreated')));
    const run = await preview(['--destination', 'crm', '--record', 'contact', '--input', input]);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('"email": "j***@example.com"');
    expect(run.stdout).toContain('"name": "John Doe"');
    expect(run.stdout).toContain('delta: all 3 fields (no previous payload given');
    expect(run.stdout).toContain('personal data: email (email, masked), name (name, as is)');
  });

  it('maps as if the resource belonged to the store given with --store, showing the when: block\'s routing', async () => {
    const run = await preview(['--destination', 'crm', '--record', 'order', '--input', join(examples, 'order.example.json'), '--store', 'uk-store', '--json']);
    expect(run.status).toBe(0);
    const result = JSON.parse(run.stdout) as { payload: Record<string, unknown>; target: unknown };
    expect(result.target).toEqual({ url: 'http://127.0.0.1:1/uk' });
    expect(result.payload).toEqual({ number: '92f5a867-bf19-47ab-982c-6720a03a3921', email: null, total: '10.00', status: 'new', market: 'UK' });
  });

  it('takes the official payment and cart examples, and the one resource of a query result', async () => {
    const expected = async (record: string, file: string) => {
      const run = await preview(['--destination', 'crm', '--record', record, '--input', join(examples, file), '--json']);
      expect(run.stderr).toBe('');
      return (JSON.parse(run.stdout) as { payload: Record<string, unknown> }).payload;
    };
    expect(await expected('payment', 'payment.example.json')).toEqual({ amount: { amount: 1000, currency: 'USD' }, method: 'Credit Card', customer: null });
    // The example cart is empty: no items, nothing to join.
    expect(await expected('cart', 'cart.example.json')).toEqual({ items: 0, total: '0.00', skus: null });
    const fromQuery = await expected('order', 'orders.example.json');
    expect(Object.keys(fromQuery)).toEqual(['number', 'email', 'total', 'status', 'quantity']);
  });

  it('gives a mapping that reads $orders the customer\'s orders of --orders, oldest first, and says when there are none', async () => {
    const orders = join(dir, 'orders.json');
    const [example] = (JSON.parse(await import('node:fs').then((fs) => fs.readFileSync(join(examples, 'orders.example.json'), 'utf8'))) as { results: Array<Record<string, unknown>> }).results;
    writeFileSync(orders, JSON.stringify({ results: [{ ...example, id: 'newer', createdAt: '2018-01-01T00:00:00.000Z' }, example] }));
    const customer = join(examples, 'customer.example.json');
    const run = await preview(['--destination', 'crm', '--record', 'buyer', '--input', customer, '--orders', orders]);
    expect(run.stderr).toBe('');
    expect(run.stdout).toContain('"orders": 2');
    expect(run.stdout).toContain('"EUR": "20.00"');
    expect(run.stdout).toContain('"last": "newer"');
    expect(run.stdout).toContain(`$orders: 2 orders from ${orders}`);
    const none = await preview(['--destination', 'crm', '--record', 'buyer', '--input', customer, '--json']);
    expect((JSON.parse(none.stdout) as { payload: unknown }).payload).toEqual({ orders: 0, lifetime: {}, last: null });
    const notOrders = await preview(['--destination', 'crm', '--record', 'buyer', '--input', customer, '--orders', customer]);
    expect(notOrders).toMatchObject({ status: 2, stderr: `ctbridge: the orders ${customer} are neither a list of orders nor a query result ({ "results": [...] })\n` });
    const notReading = await preview(['--destination', 'crm', '--record', 'contact', '--input', customer, '--orders', orders]);
    expect(notReading).toMatchObject({ status: 2, stderr: 'ctbridge: crm / contact does not read $orders; leave --orders out\n' });
  });

  it('exits 2 naming what is wrong with the destination, the record or the input', async () => {
    const input = join(examples, 'order.example.json');
    const wrongDestination = await preview(['--destination', 'erp', '--record', 'order', '--input', input]);
    expect(wrongDestination).toMatchObject({ status: 2, stderr: 'ctbridge: no destination "erp" (configured: crm)\n' });
    const wrongRecord = await preview(['--destination', 'crm', '--record', 'orders', '--input', input]);
    expect(wrongRecord).toMatchObject({ status: 2, stderr: 'ctbridge: destination "crm" has no record mapping "orders" (it has: order, payment, cart, contact, buyer)\n' });
    const notJson = join(dir, 'broken.json');
    writeFileSync(notJson, '{"id": ');
    const badInput = await preview(['--destination', 'crm', '--record', 'order', '--input', notJson]);
    expect(badInput.status).toBe(2);
    expect(badInput.stderr).toMatch(/^ctbridge: the input .*broken\.json is not JSON: /);
    const missing = await preview(['--destination', 'crm', '--record', 'order']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/required option '--input <file>' not specified/);
  });
});
