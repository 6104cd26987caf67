// Configuration errors as an operator meets them. Each kind of mistake is checked in-process, through the loader
// `ctbridge config check` uses (loadConfig on a real file) and the CLI's error reporting (reportError), asserting
// the exact stderr text, exit status 2, and that secrets never reach output. A few smoke tests run the real CLI as
// a child process (a valid file, an invalid one, a missing one, an unknown command, the schema). Plus the
// in-process pieces (${VAR} substitution, PORT override, config path resolution).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { reportError } from '../src/cli/common.ts';
import { ConfigError, loadConfig, parseConfigText, resolveConfigPath } from '../src/config/load.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'bin', 'ctbridge.js');
const dir = mkdtempSync(join(tmpdir(), 'ctbridge-config-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Shaped like a real client secret (base64-ish), so it is also not a valid mapping path.
const SECRET = 'sup3r/s3cret+Cl13nt=V4lue';
const INGEST_TOKEN = 'ingest-token-0123456789';
const baseEnv = { CTP_CLIENT_SECRET: SECRET, INGEST_TOKEN };

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI with only the given environment (so the machine's PORT or CTBRIDGE_CONFIG cannot leak in). */
function ctbridge(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env } }, (error, stdout, stderr) => {
      const status = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ status, stdout, stderr });
    });
  });
}

let counter = 0;
function writeCase(yaml: string): string {
  const file = join(dir, `case-${++counter}.yaml`);
  writeFileSync(file, yaml);
  return file;
}

async function check(yaml: string, env: Record<string, string> = baseEnv): Promise<Run & { file: string }> {
  const file = writeCase(yaml);
  return { file, ...(await ctbridge(['config', 'check', '--config', file], env)) };
}

/**
 * What `ctbridge config check --config FILE` does with a file, in-process: load it the way the CLI does (only the
 * given environment), and on failure report the error the way the CLI does, capturing its stderr and exit status.
 */
function checkInProcess(yaml: string, env: Record<string, string>): Omit<Run, 'stdout'> & { file: string } {
  const file = writeCase(yaml);
  let error: unknown;
  try {
    loadConfig(file, env);
  } catch (thrown) {
    error = thrown;
  }
  if (error === undefined) return { file, status: 0, stderr: '' };
  expect(error).toBeInstanceOf(ConfigError);
  let stderr = '';
  const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  });
  try {
    return { file, status: reportError(error), stderr };
  } finally {
    write.mockRestore();
  }
}
/** A valid file; each case breaks one thing in it. */
const valid = `commercetools:
  projectKey: demo
  authUrl: https://auth.europe-west1.gcp.commercetools.com
  apiUrl: https://api.europe-west1.gcp.commercetools.com
  clientId: client-id
  clientSecret: \${CTP_CLIENT_SECRET}
server:
  ingest:
    auth:
      type: bearer
      token: \${INGEST_TOKEN}
destinations:
  - name: sink
    type: http
    url: http://localhost:9999/hook
    method: POST
    records:
      customer:
        fields:
          email: email
          firstName: firstName
`;

/** The base file with each [from, to] replaced once (literally: `$$` in `to` stays `$$`). */
function edit(...changes: Array<[string, string]>): string {
  let text = valid;
  for (const [from, to] of changes) {
    if (!text.includes(from)) throw new Error(`test setup: "${from}" is not in the config`);
    text = text.replace(from, () => to);
  }
  return text;
}

/** The file fails `config check` with exactly these stderr lines and exit status 2, and no secret is printed. */
function expectInvalid(yaml: string, lines: (file: string) => string[], env: Record<string, string> = baseEnv): Omit<Run, 'stdout'> {
  const run = checkInProcess(yaml, env);
  expect(run.stderr).toBe(`${lines(run.file).join('\n')}\n`);
  expect(run.status).toBe(2);
  expect(run.stderr).not.toContain(SECRET);
  return run;
}

describe('ctbridge config check, in-process', () => {
  it('accepts the example configuration when its variables are set', () => {
    const config = loadConfig(join(root, 'ctbridge.example.yaml'), {
      CTP_PROJECT_KEY: 'demo',
      CTP_AUTH_URL: 'https://auth.europe-west1.gcp.commercetools.com',
      CTP_API_URL: 'https://api.europe-west1.gcp.commercetools.com',
      CTP_CLIENT_ID: 'client-id',
      CTP_CLIENT_SECRET: SECRET,
      CTBRIDGE_INGEST_TOKEN: INGEST_TOKEN,
      INTERCOM_TOKEN: 'an-intercom-access-token',
      STOREFRONT_KEY_WEB: 'pk_live_0123456789abcdefghijklmn',
      OMETRIA_API_KEY: 'an-ometria-api-key',
    });
    expect(config.destinations.map((destination) => destination.name)).toEqual(['crm-webhook', 'support', 'marketing']);
    // The Ometria destination maps nothing itself: the default mappings apply.
    expect(Object.keys(config.destinations[2]!.records)).toEqual(['contact', 'order', 'product']);
    expect(config.storefronts.map((storefront) => storefront.name)).toEqual(['web']);
  });

  it('reports YAML syntax errors with line and column, all of them', () => {
    expectInvalid(edit(['  clientId: client-id\n', '  clientId: client: id\n'], ['    method: POST\n', '    method: POST\n    method: PUT\n']), (f) => [
      `${f}: line 5, column 13: Nested mappings are not allowed in compact mappings`,
      `${f}: line 17, column 5: Map keys must be unique`,
    ]);
  });

  it('names an unknown top-level key, suggesting the likely one', () => {
    expectInvalid(`${valid}destination: []\nretries: 3\n`, (f) => [
      `${f}: destination: unknown key "destination" (did you mean "destinations"?)`,
      `${f}: retries: unknown key "retries"`,
    ]);
  });

  it('names an unknown nested key by its full path', () => {
    expectInvalid(edit(['    method: POST\n', '    method: POST\n    timeout: 5000\n']), (f) => [
      `${f}: destinations[0].timeout: unknown key "timeout" (did you mean "timeoutMs"?)`,
    ]);
  });

  it('reports a wrong type', () => {
    expectInvalid(edit(['server:\n', 'server:\n  port: eighty\n']), (f) => [`${f}: server.port: expected a number, got a string`]);
  });

  it('reports a missing required field', () => {
    expectInvalid(edit(['  clientId: client-id\n', '']), (f) => [`${f}: commercetools.clientId: missing required key (expected a string)`]);
  });

  it('lists the allowed values of an enum', () => {
    expectInvalid(edit(['method: POST', 'method: GET']), (f) => [`${f}: destinations[0].method: expected one of "POST", "PUT", "PATCH"`]);
  });

  it('lists the known destination types for an unknown one', () => {
    expectInvalid(edit(['type: http', 'type: intercomm']), (f) => [`${f}: destinations[0].type: unknown type "intercomm" (known destination types: http, intercom, ometria, monday, rest, novomind, momentis)`]);
  });

  it('reports an invalid mapping path where it is written', () => {
    expectInvalid(edit(['email: email', 'email: "addresses[x"']), (f) => [
      `${f}: destinations[0].records.customer.fields.email: "addresses[x" is not a valid path segment in "addresses[x" (expected name, name[0], name[*], name[?key=path] or name[?key='text'])`,
    ]);
  });

  it('reports a duplicate destination name', () => {
    expectInvalid(`${valid}  - name: sink\n    type: http\n    url: http://localhost:9998/other\n`, (f) => [
      `${f}: destinations[1].name: duplicate destination name "sink"`,
    ]);
  });

  it('reports storefronts that cannot work: an origin with a path, a key twice (never printed), an unknown storefront event type', () => {
    const key = 'pk_test_0123456789abcdef';
    const storefronts = `storefronts:\n  - name: web\n    key: ${key}\n    allowedOrigins: [https://shop.example.com/]\n  - name: app\n    key: ${key}\n    allowedOrigins: [https://app.example.com]\n`;
    const events = '    events:\n      seen:\n        on: [storefront.PageViewed]\n        fields: { id: id }\n';
    const run = expectInvalid(`${valid}${events}${storefronts}`, (f) => [
      `${f}: destinations[0].events.seen.on[0]: not a storefront event type; they are storefront.ProductViewed, storefront.ProductAddedToCart, storefront.CheckoutStarted, storefront.ProductsSearched`,
      `${f}: storefronts[0].allowedOrigins[0]: an origin as browsers send it: scheme://host[:port], lower-case, no path or trailing slash (e.g. https://www.example.com)`,
      `${f}: storefronts[1].key: another storefront has this key`,
    ]);
    expect(run.stderr).not.toContain(key);
  });

  it('still reports a duplicate name when a number elsewhere is not whole', () => {
    expectInvalid(`${edit(['    method: POST\n', '    method: POST\n    timeoutMs: 2.5\n'])}  - name: sink\n    type: http\n    url: http://localhost:9998/other\n`, (f) => [
      `${f}: destinations[0].timeoutMs: expected a whole number, got a number`,
      `${f}: destinations[1].name: duplicate destination name "sink"`,
    ]);
  });

  it('names a missing environment variable and where it is used', () => {
    expectInvalid(valid, (f) => [`${f}: commercetools.clientSecret: environment variable CTP_CLIENT_SECRET is not set`], { INGEST_TOKEN });
  });

  it('reports every problem at once, in the order of the file', () => {
    const yaml = edit(
      ['  projectKey: demo\n', '  projectKey: demo\n  projectkey: demo\n'],
      ['      token: ${INGEST_TOKEN}', '      token: short'],
      ['url: http://localhost:9999/hook', 'url: ${SINK_URL}'],
      ['method: POST', 'method: get'],
      ['email: email', 'email: "addresses[x"'],
      ['  - name: sink', '  - name: Sink'],
    );
    expectInvalid(yaml, (f) => [
      `${f}: commercetools.projectkey: unknown key "projectkey" (did you mean "projectKey"?)`,
      `${f}: server.ingest.auth.token: bearer token must be at least 16 characters`,
      `${f}: destinations[0].name: use lowercase letters, digits, - and _`,
      `${f}: destinations[0].url: environment variable SINK_URL is not set`,
      `${f}: destinations[0].method: expected one of "POST", "PUT", "PATCH"`,
      `${f}: destinations[0].records.customer.fields.email: "addresses[x" is not a valid path segment in "addresses[x" (expected name, name[0], name[*], name[?key=path] or name[?key='text'])`,
    ]);
  });

  it('never prints a secret, even when the configuration around it is invalid', () => {
    const yaml = edit(
      ['  clientSecret: ${CTP_CLIENT_SECRET}\n', '  clientSecret: ${CTP_CLIENT_SECRET}\n  clientSecretFile: 3\n'],
      ['      token: ${INGEST_TOKEN}', '      token: 12345'],
      ['    method: POST\n', '    method: POST\n    signingSecret: "lit3ral-s1gn1ng"\n    auth:\n      header: { name: x-api-key, value: 42 }\n'],
      // A secret pasted where a mapping path belongs: the message about the path must not repeat it.
      ['firstName: firstName', 'firstName: "${CTP_CLIENT_SECRET}"'],
    );
    const run = expectInvalid(yaml, (f) => [
      `${f}: commercetools.clientSecretFile: unknown key "clientSecretFile"`,
      `${f}: server.ingest.auth.token: expected a string, got a whole number`,
      `${f}: destinations[0].signingSecret: signing secret must be at least 16 characters`,
      `${f}: destinations[0].auth.header.value: expected a string, got a whole number`,
      `${f}: destinations[0].records.customer.fields.firstName: "***" is not a valid path segment in "***" (expected name, name[0], name[*], name[?key=path] or name[?key='text'])`,
    ]);
    expect(run.stderr).not.toContain('lit3ral-s1gn1ng');
  });

});

// The real CLI, as a child process: that `config check` reads the file it is given, prints its result, and turns
// a configuration error into its message on stderr and exit status 2.
describe('ctbridge config check (the real CLI)', () => {
  it('accepts a valid file and names its destinations', async () => {
    const run = await check(valid);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe(`${run.file}: ok (1 destination: sink)\n`);
    expect(run.status).toBe(0);
  });

  it('finds the file through CTBRIDGE_CONFIG', async () => {
    const file = join(dir, 'from-env.yaml');
    writeFileSync(file, valid);
    const run = await ctbridge(['config', 'check'], { ...baseEnv, CTBRIDGE_CONFIG: file });
    expect(run.stdout).toBe(`${file}: ok (1 destination: sink)\n`);
    expect(run.status).toBe(0);
  });

  it('exits 2 for an invalid file, naming the file and the path on stderr', async () => {
    const run = await check(edit(['    method: POST\n', '    method: POST\n    timeout: 5000\n']));
    expect(run.stderr).toBe(`${run.file}: destinations[0].timeout: unknown key "timeout" (did you mean "timeoutMs"?)\n`);
    expect(run.stdout).toBe('');
    expect(run.status).toBe(2);
    expect(run.stderr + run.stdout).not.toContain(SECRET);
  });

  it('reports a missing file by name', async () => {
    const file = join(dir, 'does-not-exist.yaml');
    const run = await ctbridge(['config', 'check', '--config', file], baseEnv);
    expect(run.stderr).toBe(`${file}: file not found\n`);
    expect(run.status).toBe(2);
  });

  it('exits 2 with commander’s message for an unknown command or option', async () => {
    const unknownCommand = await ctbridge(['confg']);
    expect(unknownCommand.stderr).toContain("error: unknown command 'confg'");
    expect(unknownCommand.status).toBe(2);
    const unknownOption = await ctbridge(['config', 'check', '--strict']);
    expect(unknownOption.stderr).toContain("error: unknown option '--strict'");
    expect(unknownOption.status).toBe(2);
  });
});

describe('ctbridge config schema', () => {
  it('prints a JSON Schema of the file', async () => {
    const run = await ctbridge(['config', 'schema']);
    expect(run.status).toBe(0);
    const schema = JSON.parse(run.stdout) as { $schema: string; properties: Record<string, { type?: string }>; required: string[] };
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(schema.properties.destinations?.type).toBe('array');
    expect(schema.required).toEqual(['commercetools', 'server']);
  });
});

describe('parseConfigText', () => {
  const env = { ...baseEnv, HOST: 'sink.internal', BATCH: '25' };

  function problemsOf(text: string, environment: Record<string, string>): string[] {
    try {
      parseConfigText(text, 'in-memory.yaml', environment);
    } catch (error) {
      if (error instanceof ConfigError) return error.problems.map((p) => `${p.path}: ${p.message}`);
      throw error;
    }
    return [];
  }

  it('substitutes ${VAR} inside larger strings and keeps $${...} literal', () => {
    const config = parseConfigText(
      edit(['url: http://localhost:9999/hook', 'url: https://${HOST}:8443/hook\n    headers:\n      x-template: "$${HOST} and $${NOT_SET}"']),
      'in-memory.yaml',
      env,
    );
    expect(config.commercetools.clientSecret).toBe(SECRET);
    expect(config.destinations[0]?.url).toBe('https://sink.internal:8443/hook');
    expect(config.destinations[0]?.headers).toEqual({ 'x-template': '${HOST} and ${NOT_SET}' });
  });

  it('reads a whole-value ${VAR} as a number where the schema wants one', () => {
    const config = parseConfigText(edit(['method: POST', 'method: POST\n    batchSize: ${BATCH}']), 'in-memory.yaml', env);
    expect(config.destinations[0]?.batchSize).toBe(25);
  });

  it('reports a malformed reference', () => {
    expect(problemsOf(edit(['clientId: client-id', 'clientId: "${CTP CLIENT}"']), env)).toEqual([
      'commercetools.clientId: malformed environment reference (expected ${NAME}; write $${ for a literal ${)',
    ]);
  });

  it('lets PORT override server.port, and validates it as a port', () => {
    expect(parseConfigText(valid, 'in-memory.yaml', env).server.port).toBe(8080);
    expect(parseConfigText(edit(['server:\n', 'server:\n  port: 7000\n']), 'in-memory.yaml', { ...env, PORT: '9090' }).server.port).toBe(9090);
    expect(problemsOf(valid, { ...env, PORT: 'http' })).toEqual(['server.port: the PORT environment variable must be a whole number from 0 to 65535']);
    expect(problemsOf(valid, { ...env, PORT: '70000' })).toEqual(['server.port: the PORT environment variable must be a whole number from 0 to 65535']);
  });

  it('fills in the defaults', () => {
    const config = parseConfigText(valid, 'in-memory.yaml', env);
    expect(config.store).toBe('sqlite:.ctbridge/ctbridge.db');
    expect(config.server.host).toBe('0.0.0.0');
    expect(config.destinations[0]?.events).toEqual({});
  });

  it('reports an empty file and a file that is not a mapping at the top level', () => {
    expect(problemsOf('', env)).toEqual(['(top level): the file is empty (expected a mapping with commercetools, server and destinations)']);
    expect(problemsOf('- a\n- b\n', env)).toEqual(['(top level): expected a mapping, got a list']);
  });
});

describe('resolveConfigPath', () => {
  it('prefers --config, then CTBRIDGE_CONFIG, then ./ctbridge.yaml', () => {
    expect(resolveConfigPath('a.yaml', { CTBRIDGE_CONFIG: 'b.yaml' })).toBe('a.yaml');
    expect(resolveConfigPath(undefined, { CTBRIDGE_CONFIG: 'b.yaml' })).toBe('b.yaml');
    expect(resolveConfigPath(undefined, {})).toBe('./ctbridge.yaml');
  });
});
