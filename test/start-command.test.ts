// `ctbridge start` as an operator runs it: the engine on its own thread, one /metrics exposition merging both
// threads' counters, correlation ids in the log, the compile cache written once started (not only at exit), and a
// clean exit on SIGTERM; a storefront event crosses the ingest thread with its intake and reaches the sink, its
// shopper's e-mail never in the (debug) log. Runs on both stores.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startSink } from '../src/sandbox/sink.ts';
import { freePort, spawnCtbridge, waitForReady, writeConfig } from './support/child-ctbridge.ts';
import { customerMessage, eventually, INGEST_TOKEN, ADMIN_TOKEN } from './support/harness.ts';
import { testStores } from './support/stores.ts';

const STOREFRONT_KEY = 'pk_test_start_command_0123456789';
const STOREFRONT_ORIGIN = 'https://shop.example.com';

describe.each(testStores)('ctbridge start on $name', (testStore) => {
  afterAll(() => testStore.cleanup());

  it('syncs through the engine thread, merges its metrics into /metrics and exits 0 on SIGTERM', async () => {
    const sink = await startSink();
    const dir = mkdtempSync(join(tmpdir(), 'ctbridge-start-'));
    const port = await freePort();
    const configPath = join(dir, 'ctbridge.yaml');
    writeConfig(configPath, {
      // Messages below carry the customer, so commercetools is never asked.
      commercetools: { projectKey: 'p', authUrl: 'http://127.0.0.1:9/auth', apiUrl: 'http://127.0.0.1:9/api', clientId: 'id', clientSecret: 'secret' },
      server: { port, host: '127.0.0.1', ingest: { auth: { type: 'bearer', token: INGEST_TOKEN } }, adminToken: ADMIN_TOKEN },
      store: await testStore.create(),
      engine: { pollIntervalMs: 50 },
      destinations: [
        {
          name: 'sink',
          type: 'http',
          url: `${sink.url}/records`,
          eventsUrl: `${sink.url}/events`,
          records: { customer: { fields: { email: 'email', firstName: 'firstName' } } },
          events: { viewed: { on: ['storefront.ProductViewed'], fields: { productId: 'product.id', store: '$store' } } },
        },
      ],
      storefronts: [{ name: 'web', key: STOREFRONT_KEY, allowedOrigins: [STOREFRONT_ORIGIN] }],
    });
    const logFile = join(dir, 'ctbridge.log');
    // A compile cache of its own: each thread writes its entries once started (and frees them), not at exit.
    const compileCache = join(dir, 'compile-cache');
    const child = spawnCtbridge(configPath, logFile, { CTBRIDGE_LOG_LEVEL: 'debug', NODE_COMPILE_CACHE: compileCache });
    const base = `http://127.0.0.1:${port}`;
    try {
      await waitForReady(base, child);
      const cacheFiles = readdirSync(compileCache, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile());
      // Hundreds of modules (the entry point alone is written when bin/ctbridge.js restarts itself).
      expect(cacheFiles.length).toBeGreaterThan(100);
      const message = customerMessage({ id: 'c-start', version: 1, email: 'start@example.com', firstName: 'Sam' }, 'CustomerCreated');
      const response = await fetch(`${base}/v1/ingest/commercetools`, {
        method: 'POST',
        headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json', 'x-correlation-id': 'corr-start-1' },
        body: JSON.stringify(message),
      });
      expect(response.status).toBe(202);
      await eventually(() => sink.records.get('customer/c-start')?.firstName === 'Sam', 'the customer at the sink');
      expect(sink.applied[0]?.correlationId).toBe('corr-start-1');

      // Storefront events go through the ingest thread too, with their intake.
      const viewed = { id: 'ev-start-1', type: 'ProductViewed', occurredAt: '2026-12-05T01:00:00Z', store: 'uk', shopper: { email: 'shopper@example.com' }, product: { id: 'prod-1' } };
      const storefrontHeaders = { 'content-type': 'application/json', origin: STOREFRONT_ORIGIN, 'x-storefront-key': STOREFRONT_KEY };
      expect((await fetch(`${base}/v1/events/storefront`, { method: 'POST', headers: storefrontHeaders, body: JSON.stringify(viewed) })).status).toBe(202);
      const invalid = await fetch(`${base}/v1/events/storefront`, { method: 'POST', headers: storefrontHeaders, body: JSON.stringify({ ...viewed, product: {} }) });
      expect(invalid.status).toBe(400);
      expect(((await invalid.json()) as { pointer: string }).pointer).toBe('/product/id');
      await eventually(() => sink.applied.some((item) => item.idempotencyKey === 'ctbridge:storefront:web:ev-start-1'), 'the storefront event at the sink');
      expect(sink.applied.find((item) => item.idempotencyKey === 'ctbridge:storefront:web:ev-start-1')?.body).toMatchObject({ sourceType: 'storefront.ProductViewed', payload: { productId: 'prod-1', store: 'uk' } });

      // The sink answers before the engine records the success: wait for the counter rather than race it.
      let metrics = '';
      await eventually(async () => {
        metrics = await (await fetch(`${base}/metrics`)).text();
        return /ctbridge_succeeded_total\{destination="sink",kind="record"\} 1\b/.test(metrics);
      }, 'the success counted in the merged metrics');
      expect(metrics).toMatch(/ctbridge_ingested_total\{source="http"\} 1\b/);
      expect(metrics).toMatch(/ctbridge_succeeded_total\{destination="sink",kind="record"\} 1\b/);
      // One exposition: every metric family is described once.
      expect(metrics.match(/^# TYPE ctbridge_succeeded_total /gm)).toHaveLength(1);
    } finally {
      const exit = await child.kill('SIGTERM');
      await sink.close();
      expect(exit).toEqual({ code: 0, signal: null });
    }
    const log = readFileSync(logFile, 'utf8');
    expect(log).toContain('"correlationId":"corr-start-1"');
    expect(log).not.toContain('start@example.com');
    expect(log).not.toContain('shopper@example.com');
    expect(log).not.toContain(STOREFRONT_KEY);
  });
});
