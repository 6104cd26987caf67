// `ctbridge sandbox` end to end, as `npm start` runs it: a child process with a short duration in a temporary
// directory. It must exit 0, show its live feed, end with every customer and order at the sink matching
// commercetools, bring the stages edited in the monday simulator back to commercetools (two-way sync), turn paid
// orders into Momentis points on the commercetools customer, show how to try agent actions, and leave a config
// file that the operator commands can use.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'bin', 'ctbridge.js');
const dir = mkdtempSync(join(tmpdir(), 'ctbridge-sandbox-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('ctbridge sandbox', () => {
  it('runs for a set duration, shows the feed, converges and exits 0', async () => {
    const result = await run(['sandbox', '--duration', '12', '--port', '0', '--seed', '7'], { CTBRIDGE_SANDBOX_DIR: dir });
    expect(result.stderr).not.toMatch(/Error|at .*\.ts:\d+/);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/POST http:\/\/127\.0\.0\.1:\d+\/v1\/ingest\/commercetools/);
    expect(result.stdout).toContain(`npx ctbridge status --config ${join(dir, 'sandbox.yaml')}`);
    // Agent actions are on: the banner shows a refund to try with the run's agent key.
    expect(result.stdout).toMatch(/agent actions +curl -H 'X-Api-Key: ctb_\S+' -H 'Idempotency-Key: refund-1' -H 'Content-Type: application\/json' -d '\{"amount":\{"currencyCode":"(EUR|GBP)","amount":"5\.00"\},"reason":"goodwill"\}' http:\/\/127\.0\.0\.1:\d+\/v1\/actions\/orders\/[0-9a-f-]{36}\/refunds/);
    expect(result.stdout).toMatch(/ ingested {4}\S+ (customer|order|payment) .* → accepted/);
    expect(result.stdout).toMatch(/ synced {6}(customer|order) \S+ v\d+: changed /);
    expect(result.stdout).toMatch(/ burst {7}.*update/);
    expect(result.stdout).toMatch(/ retried {5}/);
    expect(result.stdout).toMatch(/ dead-letter /);
    expect(result.stdout).toMatch(/ replayed {4}\d+ dead letter/);

    const converged = /converged: (\d+)\/(\d+) customers, (\d+)\/(\d+) orders match commercetools/.exec(result.stdout);
    expect(converged, result.stdout.slice(-2000)).not.toBeNull();
    const [, customersMatching, customers, ordersMatching, orders] = converged!.map(Number);
    expect(customers).toBeGreaterThanOrEqual(40);
    expect(orders).toBeGreaterThanOrEqual(80);
    expect(customersMatching).toBe(customers);
    expect(ordersMatching).toBe(orders);
    expect(result.stdout).not.toContain('differs:');

    // Two-way: stages a salesperson set in the monday simulator came back by webhook to commercetools.
    expect(result.stdout).toMatch(/two-way: a salesperson set customer \S+'s Stage to \w+ in monday → webhook → http:\/\/127\.0\.0\.1:\d+\/v1\/inbound\/monday/);
    const twoWay = /two-way: (\d+)\/(\d+) stages set in monday by hand reached commercetools \(mondayStage\)/.exec(result.stdout);
    expect(twoWay, result.stdout.slice(-2000)).not.toBeNull();
    expect(Number(twoWay![2])).toBeGreaterThan(0);
    expect(twoWay![1]).toBe(twoWay![2]);

    // Momentis: paid orders were accrued in the simulator's ledger, and the points came back by webhook to seeded
    // customers in commercetools.
    expect(result.stdout).toMatch(/two-way: Momentis webhooks \(balance, tier, rewards\) → http:\/\/127\.0\.0\.1:\d+\/v1\/inbound\/momentis/);
    const loyalty = /momentis: +\d+ members; ledger: (\d+) accruals, .*; (\d+) customers \((\d+) seeded\) hold loyaltyPoints in commercetools/.exec(result.stdout);
    expect(loyalty, result.stdout.slice(-2000)).not.toBeNull();
    expect(Number(loyalty![1])).toBeGreaterThan(0);
    expect(Number(loyalty![3])).toBeGreaterThan(0);
    // A reward redeemed at checkout: a customer holding one orders with its code, and the order's OrderCreated
    // reports the redemption to Momentis exactly once.
    expect(result.stdout).toMatch(/checkout +customer \S+ redeems a Momentis reward: order \S+ placed with MOM-rw_[0-9a-f]+/);
    const checkout = /(\d+) rewards redeemed at checkout, (\d+)\/(\d+) reported to Momentis once/.exec(result.stdout);
    expect(checkout, result.stdout.slice(-2000)).not.toBeNull();
    expect(Number(checkout![1])).toBeGreaterThan(0);
    expect(checkout![2]).toBe(checkout![1]);
  });

  it('leaves a config that `ctbridge status` and `ctbridge dlq list` can use', async () => {
    const config = join(dir, 'sandbox.yaml');
    const status = await run(['status', '--config', config]);
    expect(status.stderr).toBe('');
    expect(status.status).toBe(0);
    expect(status.stdout).toMatch(/^sink\s+\d/m);

    const dlq = await run(['dlq', 'list', '--all', '--json', '--config', config]);
    expect(dlq.status).toBe(0);
    const letters = JSON.parse(dlq.stdout) as Array<{ destination: string; kind: string; replayedAt: string | null }>;
    expect(letters.length).toBeGreaterThan(0);
    expect(letters.every((letter) => letter.destination === 'sink' && letter.replayedAt !== null)).toBe(true);
  });

  it('rejects a malformed option with a usage error', async () => {
    const result = await run(['sandbox', '--duration', 'soon'], { CTBRIDGE_SANDBOX_DIR: dir });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('--duration must be a whole number');
  });
});
