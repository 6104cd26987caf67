// Two-way sync in the configuration: `config check` refuses ownership that cannot work, naming where (a field
// written back from a JSONata expression, a template or a transform with no inverse; a write-back target that is not
// writable; a shared field without its conflict rule or its target; inbound without a field written back), warns
// when the commercetools scopes exceed what the configuration uses (least privilege), and `ctbridge setup` creates
// the custom Types written-back fields need — idempotently, and with --dry-run only saying what it would do — against
// the commercetools emulator, through the real CLI. Plus the inverses of the transforms that have one.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scopeWarnings } from '../src/config/ownership.ts';
import { configSchema } from '../src/config/schema.ts';
import { compileInverse } from '../src/mapping/inverse.ts';
import { emulatorCredentials, startEmulator, type Emulator } from '../src/sandbox/emulator.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ctbridge-ownership-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = {
  commercetools: { projectKey: 'demo', region: 'europe-west1.gcp', clientId: 'id', clientSecret: 'secret-secret' },
  server: { ingest: { auth: { type: 'bearer', token: 'ingest-token-0123456789' } } },
};

function crm(customer: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...base,
    destinations: [
      {
        name: 'crm',
        type: 'monday',
        token: 'monday-token',
        boards: { customer: { board: '1', externalIdColumn: 'ext', columns: { stage: 'stage', tier: 'tier', group: 'group' } } },
        inbound: { auth: { type: 'monday', signingSecret: 'monday-signing-secret-0123' } },
        records: { customer: { fields: { name: 'firstName', stage: 'custom.fields.stage', tier: 'custom.fields.tier', group: 'customerGroup.obj.key' }, ...customer } },
        ...extra,
      },
    ],
  };
}

function problems(config: unknown): string[] {
  const result = configSchema.safeParse(config);
  return result.success ? [] : result.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}

describe('ownership in config check', () => {
  it('accepts destination-owned and shared fields written back to custom fields or a standard field', () => {
    expect(
      problems(
        crm({
          ownership: {
            stage: { owner: 'destination', writeBack: { customField: 'stage', type: 'ctbridge-customer' } },
            tier: { owner: 'shared', conflict: { sourceOfTruth: 'destination' }, writeBack: { customField: 'tier', type: 'ctbridge-customer' } },
            group: { owner: 'shared', conflict: 'lastWriteWins', writeBack: { standard: 'customerGroup' } },
          },
        }),
      ),
    ).toEqual([]);
  });

  it('refuses a written-back field with no inverse, naming the field', () => {
    const config = crm({ fields: { name: 'firstName', stage: { jsonata: '$uppercase(custom.fields.stage)' }, tier: { template: '{{custom.fields.tier}}!' } }, ownership: {
      stage: { owner: 'destination', writeBack: { customField: 'stage', type: 't1' } },
      tier: { owner: 'destination', writeBack: { customField: 'tier', type: 't1' } },
    } });
    expect(problems(config)).toEqual([
      'destinations.0.records.customer.fields.stage: written back (ownership.stage), so it needs an inverse: a JSONata expression has no inverse: map the field from a path to write it back',
      'destinations.0.records.customer.fields.tier: written back (ownership.tier), so it needs an inverse: a template has no inverse: map the field from a path to write it back',
    ]);
    const hashed = crm({ fields: { name: 'firstName', stage: { path: 'custom.fields.stage', pipe: ['trim', 'hash'] } }, ownership: { stage: { owner: 'destination', writeBack: { customField: 'stage', type: 't1' } } } });
    expect(problems({ ...hashed, pii: { hashKey: 'a-hash-key-0123456789' } })).toEqual(['destinations.0.records.customer.fields.stage: written back (ownership.stage), so it needs an inverse: pipe[1]: hash has no inverse: a value it produced cannot be turned back into commercetools\' value']);
  });

  it('refuses a target that is not writable, and shared fields without a rule or a target', () => {
    expect(
      problems(
        crm({
          ownership: {
            stage: { owner: 'destination', writeBack: { standard: 'email' } },
            tier: { owner: 'shared' },
          },
        }),
      ),
    ).toEqual([
      'destinations.0.records.customer.ownership.stage.writeBack.standard: "email" of a customer is not writable by ctbridge (writable: customerGroup, firstName, lastName, companyName, locale, externalId)',
      'destinations.0.records.customer.ownership.tier.conflict: a shared field needs a conflict rule: { sourceOfTruth: commercetools|destination } or lastWriteWins',
      'destinations.0.records.customer.ownership.tier.writeBack: a shared field flows back: name where it lands in commercetools (writeBack: { customField, type }, { standard } or { customObject })',
    ]);
    const product = { ...base, destinations: [{ name: 'sink', type: 'http', url: 'http://127.0.0.1:1/', inbound: { auth: { type: 'hmac', secret: 'hmac-secret-0123456789' } }, records: { product: { fields: { tag: 'key' }, ownership: { tag: { owner: 'destination', writeBack: { customField: 'tag', type: 'tt' } } } } } }] };
    expect(problems(product)).toEqual(['destinations.0.records.product.ownership.tag.writeBack.customField: product custom fields are not written back (customers\' and orders\' are)']);
  });

  it('refuses ownership of an unmapped field and inbound without a field written back', () => {
    expect(problems(crm({ ownership: { notes: { owner: 'destination' } } }))).toEqual([
      'destinations.0.records.customer.ownership.notes: "notes" is not a mapped field of customer (it maps name, stage, tier, group)',
      'destinations.0.inbound: inbound webhooks need a field written back: give one a writeBack in ownership',
    ]);
  });

  it('refuses an inbound auth the connector cannot send', () => {
    const config = crm({ ownership: { stage: { owner: 'destination', writeBack: { customField: 'stage', type: 't1' } } } }, { inbound: { auth: { type: 'hmac', secret: 'hmac-secret-0123456789' } } });
    expect(problems(config)).toEqual(['destinations.0.inbound.auth.type: a monday destination authenticates its webhooks with monday or sharedSecret']);
  });

  it('warns about scopes the configuration does not use, and about missing ones', () => {
    const parsed = configSchema.parse(crm({ ownership: { stage: { owner: 'destination', writeBack: { customField: 'stage', type: 't1' } } } }));
    expect(scopeWarnings(['view_customers:demo', 'manage_customers:demo'], parsed.destinations)).toEqual([]);
    expect(scopeWarnings(['view_customers:demo', 'manage_orders:demo'], parsed.destinations)).toEqual([
      'commercetools.scopes: manage_orders is not used (no write-back to orders is configured); drop it',
      'commercetools.scopes: write-back needs manage_customers, which the scopes lack',
    ]);
    const oneWay = configSchema.parse({ ...base, destinations: [{ name: 'sink', type: 'http', url: 'http://127.0.0.1:1/', records: { customer: { fields: { email: 'email' } } } }] });
    expect(scopeWarnings(['manage_customers:demo'], oneWay.destinations)).toEqual(['commercetools.scopes: manage_customers is not used (no write-back to customers is configured); drop it']);
  });
});

describe('write-back into a custom object in config check', () => {
  const target = (customObject: Record<string, unknown>) => ({ owner: 'destination', writeBack: { customObject } });

  it('accepts a container, a key template of the record and a value path, and asks for manage_key_value_documents', () => {
    const config = crm({ fields: { stage: 'customObjects.crm-stages.id.obj.value.deal.stage' }, ownership: { stage: target({ container: 'crm-stages', key: '{{id}}', path: 'deal.stage' }) } });
    expect(problems(config)).toEqual([]);
    const parsed = configSchema.parse(config);
    expect(scopeWarnings(['view_customers:demo', 'manage_key_value_documents:demo'], parsed.destinations)).toEqual([]);
    expect(scopeWarnings(['view_customers:demo', 'manage_customers:demo'], parsed.destinations)).toEqual([
      'commercetools.scopes: manage_customers is not used (no write-back to customers is configured); drop it',
      'commercetools.scopes: write-back needs manage_key_value_documents, which the scopes lack',
    ]);
  });

  it('refuses a key without a placeholder, a bad container or path, and a field read from another object, naming where', () => {
    expect(problems(crm({ ownership: { stage: target({ container: 'crm stages', key: '{{id}}', path: 'stage' }) } })).join('\n')).toContain('a custom object container: letters, digits, - _ ~ or .');
    expect(problems(crm({ ownership: { stage: target({ container: 'crm', key: '{{id}}', path: 'deal..stage' }) } })).join('\n')).toContain('a dotted path into the object\'s value');
    expect(problems(crm({ ownership: { stage: target({ container: 'crm', key: 'fixed', path: 'stage' }) } }))).toEqual([
      'destinations.0.records.customer.ownership.stage.writeBack.customObject.key: a template needs at least one {{path}} (for fixed text, use value)',
    ]);
    expect(problems(crm({ fields: { stage: 'customObjects.other.id.obj.value.stage' }, ownership: { stage: target({ container: 'crm', key: '{{id}}', path: 'stage' }) } }))).toEqual([
      'destinations.0.records.customer.ownership.stage.writeBack.customObject: the field reads customObjects.other.id.obj.value.stage, but is written to crm at value.stage: read it from customObjects.crm.<key field>.obj.value.stage',
    ]);
  });
});

describe('polling in config check', () => {
  const stage = { ownership: { stage: { owner: 'destination', writeBack: { customField: 'stage', type: 't1' } } } };

  it('accepts poll as a duration or milliseconds, with or without webhook auth', () => {
    const parsed = configSchema.parse(crm(stage, { inbound: { poll: '2m' } }));
    expect(parsed.destinations[0]!.inbound).toEqual({ poll: 120_000, maxAttempts: 8 });
    expect(configSchema.parse(crm(stage, { inbound: { poll: 30_000, auth: { type: 'monday', signingSecret: 'monday-signing-secret-0123' } } })).destinations[0]!.inbound?.poll).toBe(30_000);
  });

  it('refuses a bad duration, inbound with neither auth nor poll, and poll for a connector that cannot list its changes', () => {
    expect(problems(crm(stage, { inbound: { poll: 'soon' } }))).toEqual(['destinations.0.inbound.poll: a duration such as 30s, 5m, 1h30m or 1d (units ms, s, m, h, d), greater than zero']);
    expect(problems(crm(stage, { inbound: {} }))).toEqual(['destinations.0.inbound: inbound needs auth (the destination pushes webhooks) or poll (ctbridge lists its changes)']);
    const http = { ...base, destinations: [{ name: 'loyalty', type: 'http', url: 'http://127.0.0.1:1/', inbound: { poll: '1m' }, records: { member: { source: 'customer', fields: { tier: 'custom.fields.tier' }, ownership: { tier: { owner: 'destination', writeBack: { customField: 'tier', type: 't1' } } } } } }] };
    expect(problems(http)).toEqual(['destinations.0.inbound.poll: ctbridge cannot list the changes of a http destination: it must push them (inbound.auth)']);
  });
});

describe('inverses of transforms', () => {
  it('undoes country, money as object and a one-to-one map; refuses a map that is not one-to-one', () => {
    expect(compileInverse({ path: 'addresses[0].country', pipe: [{ country: { as: 'name' } }] })('Germany')).toBe('DE');
    expect(compileInverse({ path: 'totalPrice', pipe: [{ money: { as: 'object' } }] })({ amount: 1234, currency: 'EUR' })).toEqual({ type: 'centPrecision', currencyCode: 'EUR', centAmount: 1234, fractionDigits: 2 });
    expect(compileInverse({ path: 'orderState', pipe: [{ map: { table: { Open: 'New', Complete: 'Won' } } }] })('Won')).toBe('Complete');
    expect(() => compileInverse({ path: 'orderState', pipe: [{ map: { table: { Open: 'New', Confirmed: 'New' } } }] })).toThrow('map has no inverse: "Open" and "Confirmed" both become "New"');
    expect(compileInverse({ path: 'phone', pipe: ['e164'] })('+4930123456')).toBe('+4930123456');
  });
});

describe('ctbridge setup (the real CLI) against the emulator', () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator({ projectKey: 'setup-project' });
  });
  afterAll(() => emulator.close());

  function run(args: string[], file: string): Promise<{ status: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, [join(root, 'bin', 'ctbridge.js'), ...args, '--config', file], { cwd: root, env: { PATH: process.env.PATH ?? '' } }, (error, stdout, stderr) => {
        resolve({ status: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
      });
    });
  }

  it('reports with --dry-run, creates the Type, then finds it up to date; config check warns about a broad scope', async () => {
    const config = crm({ ownership: { stage: { owner: 'destination', writeBack: { customField: 'stage', type: 'ctbridge-customer' } }, tier: { owner: 'shared', conflict: 'lastWriteWins', writeBack: { customField: 'tier', type: 'ctbridge-customer' } } } });
    const file = join(dir, 'setup.json');
    writeFileSync(file, JSON.stringify({ ...config, commercetools: { ...emulatorCredentials(emulator) } }));
    const dry = await run(['setup', '--dry-run'], file);
    expect(dry.stdout).toBe('would create Type ctbridge-customer for customer with stage, tier\n');
    expect(dry.status).toBe(0);
    const created = await run(['setup'], file);
    expect(created.stdout).toBe('create Type ctbridge-customer for customer with stage, tier\n');
    const again = await run(['setup'], file);
    expect(again.stdout).toBe('up to date: ctbridge-customer.stage, ctbridge-customer.tier\n');
    const check = await run(['config', 'check'], file);
    expect(check.status).toBe(0);
    expect(check.stderr).toBe(`${file}: warning: commercetools.scopes: manage_project grants every write; ctbridge needs view_* scopes and manage_customers for write-back\n`);
  });
});
