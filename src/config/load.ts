// Reads ctbridge.yaml: YAML, then `${VAR}` substitution from the environment, then the zod schema. Every problem
// is collected (not just the first) and reported as `FILE: PATH: MESSAGE` lines that never echo a secret: the
// operator fixes the whole file in one round, and the output is safe to paste into a ticket or a CI log.
import { readFileSync } from 'node:fs';
import { isNode, LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { configSchema, type Config } from './schema.ts';

export interface ConfigProblem {
  /** Where in the file: `destinations[1].records.contact.fields.email`, `(top level)`, `line 3, column 7`, or '' for the file itself. */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly file: string;
  readonly problems: ConfigProblem[];

  constructor(file: string, problems: ConfigProblem[]) {
    super(problems.map((problem) => (problem.path === '' ? `${file}: ${problem.message}` : `${file}: ${problem.path}: ${problem.message}`)).join('\n'));
    this.file = file;
    this.problems = problems;
  }
}

type Env = Readonly<Record<string, string | undefined>>;
type PathStep = string | number;

const DEFAULT_CONFIG_FILE = './ctbridge.yaml';
const TOP_LEVEL = '(top level)';

/** `--config FILE`, else `CTBRIDGE_CONFIG`, else `./ctbridge.yaml`. */
export function resolveConfigPath(explicit?: string, env: Env = process.env): string {
  if (explicit !== undefined && explicit !== '') return explicit;
  const fromEnv = env.CTBRIDGE_CONFIG;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return DEFAULT_CONFIG_FILE;
}

/** Reads, substitutes and validates the configuration file; throws ConfigError listing every problem. */
export function loadConfig(file: string, env: Env = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, [{ path: '', message: describeReadError(error) }]);
  }
  return parseConfigText(text, file, env);
}

/** Validates configuration text as if it had been read from `file` (which only names it in messages). */
export function parseConfigText(text: string, file: string, env: Env = process.env): Config {
  const lineCounter = new LineCounter();
  // prettyErrors off: the pretty form quotes the offending source line, which may hold a literal secret.
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ConfigError(
      file,
      document.errors.map((error) => {
        const { line, col } = lineCounter.linePos(error.pos[0]);
        return { path: `line ${line}, column ${col}`, message: firstLine(error.message) };
      }),
    );
  }
  let raw: unknown;
  try {
    raw = document.toJS({ maxAliasCount: 1000 });
  } catch (error) {
    // Alias expansion bombs and the like: the file parses but cannot be turned into data.
    throw new ConfigError(file, [{ path: TOP_LEVEL, message: firstLine((error as Error).message) }]);
  }
  if (raw === null || raw === undefined) {
    throw new ConfigError(file, [{ path: TOP_LEVEL, message: 'the file is empty (expected a mapping with commercetools, server and destinations)' }]);
  }

  const substitution = substitute(raw, env);
  const problems: RawProblem[] = [...substitution.problems];
  const data = substitution.value;
  problems.push(...applyEnvOverrides(data, env));

  let result = configSchema.safeParse(data, { error: defaultMessage });
  // A whole-value `${VAR}` always yields a string; where the schema wants a number or boolean, read it as one.
  if (!result.success && coerceSubstitutedScalars(data, result.error.issues, substitution.wholeReferences)) {
    result = configSchema.safeParse(data, { error: defaultMessage });
  }
  if (!result.success) {
    const context: ProblemContext = { data, secrets: substitution.substitutedPaths };
    const issues = [...result.error.issues, ...crossFieldIssuesBehindAbort(data, result.error.issues)];
    for (const problem of issuesToProblems(issues, [], context)) {
      // A missing variable is already reported; what the schema says about its placeholder is noise.
      if (substitution.missingPaths.some((missing) => isPrefix(missing, problem.path))) continue;
      problems.push({ path: problem.path, message: redactAt(problem.message, problem.path, context) });
    }
  }
  if (problems.length > 0) {
    const secrets = collectSecretStrings(data, substitution.substitutedValues);
    // In the order of the file, so the report reads top to bottom like the file does.
    const ordered = problems
      .map((problem, index) => ({ problem, index, position: positionOf(document, problem.path) }))
      .sort((a, b) => a.position - b.position || a.index - b.index);
    throw new ConfigError(file, ordered.map(({ problem }) => ({ path: renderPath(problem.path), message: redactAll(problem.message, secrets) })));
  }
  if (!result.success) throw new Error('unreachable: invalid configuration without problems');
  return result.data;
}

/** JSON Schema (draft 2020-12) of the file as written, for editor completion: defaulted keys are optional. */
export function configJsonSchema(): object {
  const schema = z.toJSONSchema(configSchema, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' });
  return { ...schema, title: 'ctbridge configuration', description: 'ctbridge.yaml. String values may reference environment variables as ${NAME}; write $${ for a literal ${.' };
}

// --- reading ---

function describeReadError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'file not found';
    case 'EACCES':
    case 'EPERM':
      return 'cannot read the file: permission denied';
    case 'EISDIR':
      return 'cannot read the file: it is a directory';
    default:
      return `cannot read the file${code ? ` (${code})` : ''}`;
  }
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0]!.trim();
}

// --- ${VAR} substitution ---

interface Substitution {
  value: unknown;
  problems: RawProblem[];
  /** Paths whose value was filled (wholly or partly) from the environment. */
  substitutedPaths: PathStep[][];
  /** The environment values that went into the file: never to be echoed. */
  substitutedValues: string[];
  /** Paths whose whole value was one `${VAR}`: candidates for number/boolean coercion. */
  wholeReferences: PathStep[][];
  /** Paths referencing an unset variable; they keep the reference text as a placeholder. */
  missingPaths: PathStep[][];
}

const REFERENCE = /\$\$\{|\$\{([^{}]*)\}|\$\{/g;
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const WHOLE_REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/;

function substitute(root: unknown, env: Env): Substitution {
  const out: Substitution = { value: undefined, problems: [], substitutedPaths: [], substitutedValues: [], wholeReferences: [], missingPaths: [] };

  function visit(value: unknown, path: PathStep[]): unknown {
    if (typeof value === 'string') return substituteString(value, path);
    if (Array.isArray(value)) return value.map((item, index) => visit(item, [...path, index]));
    if (isPlainObject(value)) {
      const copy: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) copy[key] = visit(item, [...path, key]);
      return copy;
    }
    return value;
  }

  function substituteString(text: string, path: PathStep[]): string {
    if (!text.includes('${')) return text;
    let missing = false;
    let used = false;
    const result = text.replace(REFERENCE, (match: string, name: string | undefined) => {
      if (match === '$${') return '${';
      if (name === undefined || !VARIABLE_NAME.test(name)) {
        out.problems.push({ path, message: 'malformed environment reference (expected ${NAME}; write $${ for a literal ${)' });
        missing = true;
        return match;
      }
      const replacement = env[name];
      if (replacement === undefined) {
        out.problems.push({ path, message: `environment variable ${name} is not set` });
        missing = true;
        return match;
      }
      used = true;
      out.substitutedValues.push(replacement);
      return replacement;
    });
    if (missing) out.missingPaths.push(path);
    if (used) {
      out.substitutedPaths.push(path);
      if (!missing && WHOLE_REFERENCE.test(text)) out.wholeReferences.push(path);
    }
    return result;
  }

  out.value = visit(root, []);
  return out;
}

/** Environment variables that override the file (the usual container conventions). */
function applyEnvOverrides(data: unknown, env: Env): RawProblem[] {
  const port = env.PORT;
  if (port === undefined || port === '') return [];
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    return [{ path: ['server', 'port'], message: 'the PORT environment variable must be a whole number from 0 to 65535' }];
  }
  if (isPlainObject(data) && isPlainObject(data.server)) data.server.port = Number(port);
  return [];
}

function coerceSubstitutedScalars(data: unknown, issues: readonly z.core.$ZodIssue[], wholeReferences: PathStep[][]): boolean {
  let changed = false;
  for (const issue of issues) {
    if (issue.code !== 'invalid_type' || !['number', 'int', 'boolean'].includes(issue.expected)) continue;
    const path = issue.path as PathStep[];
    if (!wholeReferences.some((reference) => samePath(reference, path))) continue;
    const parent = valueAt(data, path.slice(0, -1));
    const key = path.at(-1);
    if (key === undefined || parent === null || typeof parent !== 'object') continue;
    const container = parent as Record<PathStep, unknown>;
    const current = container[key];
    if (typeof current !== 'string') continue;
    if (issue.expected === 'boolean' && (current === 'true' || current === 'false')) {
      container[key] = current === 'true';
      changed = true;
    } else if (issue.expected !== 'boolean' && /^-?\d+(\.\d+)?$/.test(current)) {
      container[key] = Number(current);
      changed = true;
    }
  }
  return changed;
}

/**
 * zod skips cross-field refinements (duplicate destination names, region vs URLs) once a `.int()` check has
 * failed anywhere below them. To still report every problem in one go, validate again with those numbers
 * rounded and keep the refinement issues that only the second run found.
 */
function crossFieldIssuesBehindAbort(data: unknown, issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  const aborting = issues.filter((issue) => issue.code === 'invalid_type' && issue.expected === 'int');
  if (aborting.length === 0) return [];
  const repaired = structuredClone(data);
  for (const issue of aborting) {
    const path = issue.path as PathStep[];
    const parent = valueAt(repaired, path.slice(0, -1));
    const key = path.at(-1);
    if (key === undefined || parent === null || typeof parent !== 'object') continue;
    const container = parent as Record<PathStep, unknown>;
    if (typeof container[key] === 'number') container[key] = Math.round(container[key]);
  }
  const second = configSchema.safeParse(repaired, { error: defaultMessage });
  if (second.success) return [];
  const seen = new Set(issues.map((issue) => `${JSON.stringify(issue.path)} ${issue.message}`));
  return second.error.issues.filter((issue) => issue.code === 'custom' && !seen.has(`${JSON.stringify(issue.path)} ${issue.message}`));
}

// --- zod issues → problems ---

interface ProblemContext {
  data: unknown;
  secrets: PathStep[][];
}

interface RawProblem {
  path: PathStep[];
  message: string;
}

/**
 * Messages for zod's built-in checks, phrased as what is expected. Schema-specific messages take precedence
 * over this map, so a message written next to a rule in schema.ts is shown as is. Received values are never
 * quoted: they may be secrets.
 */
const defaultMessage: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return `missing required key (expected ${describeExpected(issue.expected)})`;
      return `expected ${describeExpected(issue.expected)}, got ${describeValue(issue.input)}`;
    case 'invalid_value':
      return issue.values.length === 1 ? `expected ${quoteValue(issue.values[0])}` : `expected one of ${issue.values.map(quoteValue).join(', ')}`;
    case 'too_small':
      return describeBound(issue.origin, issue.minimum, issue.inclusive ?? true, 'min');
    case 'too_big':
      return describeBound(issue.origin, issue.maximum, issue.inclusive ?? true, 'max');
    case 'invalid_format':
      if (issue.format === 'url') return 'expected a URL (http:// or https://)';
      if (issue.format === 'regex') return `expected text matching ${issue.pattern ?? 'the required pattern'}`;
      return `expected a valid ${issue.format}`;
    case 'not_multiple_of':
      return `expected a multiple of ${String(issue.divisor)}`;
    default:
      return undefined;
  }
};

function describeExpected(expected: string): string {
  switch (expected) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'int':
      return 'a whole number';
    case 'boolean':
      return 'true or false';
    case 'array':
    case 'tuple':
      return 'a list';
    case 'object':
    case 'record':
    case 'map':
      return 'a mapping';
    default:
      return expected;
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'number':
      return Number.isInteger(value) ? 'a whole number' : 'a number';
    case 'boolean':
      return 'true/false';
    case 'object':
      return 'a mapping';
    default:
      return typeof value;
  }
}

function describeBound(origin: string, bound: number | bigint | Date, inclusive: boolean, side: 'min' | 'max'): string {
  const n = typeof bound === 'object' ? bound.toISOString() : String(bound);
  if (origin === 'string') {
    if (side === 'min' && n === '1') return 'must not be empty';
    return `must be ${side === 'min' ? 'at least' : 'at most'} ${n} characters long`;
  }
  if (origin === 'array' || origin === 'set') {
    if (side === 'min' && n === '1') return 'must not be empty';
    return `must have ${side === 'min' ? 'at least' : 'at most'} ${n} items`;
  }
  if (side === 'min') return inclusive ? `must be at least ${n}` : `must be greater than ${n}`;
  return inclusive ? `must be at most ${n}` : `must be less than ${n}`;
}

function quoteValue(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function issuesToProblems(issues: readonly z.core.$ZodIssue[], base: PathStep[], context: ProblemContext): RawProblem[] {
  const problems: RawProblem[] = [];
  for (const issue of issues) {
    const path = [...base, ...(issue.path as PathStep[])];
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) {
          const suggestion = closest(key, allowedKeysAt(path, context.data));
          problems.push({ path: [...path, key], message: `unknown key ${JSON.stringify(key)}${suggestion ? ` (did you mean ${JSON.stringify(suggestion)}?)` : ''}` });
        }
        break;
      case 'invalid_union':
        problems.push(...unionProblems(issue, path, context));
        break;
      case 'invalid_key':
      case 'invalid_element':
        problems.push(...issuesToProblems(issue.issues, issue.code === 'invalid_element' ? [...path, issue.key as PathStep] : path, context));
        break;
      default:
        problems.push({ path, message: issue.message });
    }
  }
  return problems;
}

function unionProblems(issue: z.core.$ZodIssueInvalidUnion, path: PathStep[], context: ProblemContext): RawProblem[] {
  if (issue.discriminator !== undefined) {
    // `path` ends at the discriminator key itself (e.g. destinations[0].type).
    const options = ('options' in issue ? (issue.options ?? []) : []).map(String);
    const known = path.includes('destinations') ? 'known destination types' : 'known types';
    const value = valueAt(context.data, path);
    if (value === undefined) return [{ path, message: `missing required key (${known}: ${options.join(', ')})` }];
    if (typeof value !== 'string') return [{ path, message: `expected a string (${known}: ${options.join(', ')}), got ${describeValue(value)}` }];
    const shown = isSecretPath(path, context) ? '' : ` ${JSON.stringify(value)}`;
    return [{ path, message: `unknown type${shown} (${known}: ${options.join(', ')})` }];
  }
  const branches = issue.errors;
  if (branches.length === 0) return [{ path, message: issue.message }];
  const atRoot = (branch: readonly z.core.$ZodIssue[], code: string): z.core.$ZodIssue | undefined => branch.find((i) => i.path.length === 0 && i.code === code);
  // A branch whose shape fits (right type, no foreign keys) is what the author meant: report its own problems.
  const fitting = branches.filter((branch) => !atRoot(branch, 'invalid_type') && !atRoot(branch, 'unrecognized_keys'));
  if (fitting.length > 0) {
    const best = fitting.reduce((a, b) => (b.length < a.length ? b : a));
    return issuesToProblems(best, path, context);
  }
  const value = valueAt(context.data, path);
  if (branches.every((branch) => atRoot(branch, 'invalid_type'))) {
    const expected = [...new Set(branches.map((branch) => describeExpected((atRoot(branch, 'invalid_type') as z.core.$ZodIssueInvalidType).expected)))];
    if (value === undefined) return [{ path, message: `missing required key (expected ${expected.join(' or ')})` }];
    return [{ path, message: `expected ${expected.join(' or ')}, got ${describeValue(value)}` }];
  }
  // Object alternatives told apart by which key is present (`auth: { bearer }` / `{ basic }` / `{ header }`).
  const requiredKeys = branches.flatMap((branch) =>
    branch.filter((i) => i.path.length === 1 && i.code === 'invalid_type' && valueAt(value, i.path as PathStep[]) === undefined).map((i) => String(i.path[0])),
  );
  if (requiredKeys.length > 0) return [{ path, message: `expected exactly one of the keys ${[...new Set(requiredKeys)].map((k) => JSON.stringify(k)).join(', ')}` }];
  return [{ path, message: 'does not match any of the allowed forms' }];
}

// --- schema walking, for "did you mean" ---

interface LooseDef {
  type: string;
  shape?: Record<string, unknown>;
  innerType?: unknown;
  in?: unknown;
  out?: unknown;
  element?: unknown;
  valueType?: unknown;
  options?: unknown[];
  discriminator?: string;
  values?: unknown[];
}

function defOf(schema: unknown): LooseDef | undefined {
  return (schema as { _zod?: { def?: LooseDef } } | undefined)?._zod?.def;
}

/** The keys the schema allows for the object at `path`, or undefined where that cannot be told. */
function allowedKeysAt(path: readonly PathStep[], data: unknown): string[] | undefined {
  let schema: unknown = configSchema;
  let value = data;
  for (let index = 0; ; index++) {
    schema = unwrapSchema(schema, value);
    const def = defOf(schema);
    if (!def) return undefined;
    if (index === path.length) return def.type === 'object' && def.shape ? Object.keys(def.shape) : undefined;
    const step = path[index]!;
    if (def.type === 'object' && def.shape && typeof step === 'string') schema = def.shape[step];
    else if (def.type === 'array' && typeof step === 'number') schema = def.element;
    else if (def.type === 'record') schema = def.valueType;
    else return undefined;
    value = valueAt(value, [step]);
  }
}

function unwrapSchema(schema: unknown, value: unknown): unknown {
  for (let depth = 0; depth < 20; depth++) {
    const def = defOf(schema);
    if (!def) return undefined;
    if (['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional'].includes(def.type)) schema = def.innerType;
    // A preprocess (destinations' default mappings) is a pipe from a transform: the shape is its output's.
    else if (def.type === 'pipe') schema = defOf(def.in)?.type === 'transform' ? def.out : def.in;
    else if (def.type === 'union' && def.discriminator !== undefined && def.options) {
      const tag = valueAt(value, [def.discriminator]);
      const discriminator = def.discriminator;
      schema = def.options.find((option) => defOf(defOf(option)?.shape?.[discriminator])?.values?.includes(tag));
    } else return schema;
  }
  return undefined;
}

function closest(key: string, candidates: string[] | undefined): string | undefined {
  if (!candidates) return undefined;
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = candidate.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= Math.min(3, Math.max(1, Math.floor(key.length / 3))) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

// --- secrets ---

// Key names whose values are credentials, wherever they appear (header names like x-api-key included).
const SECRET_KEY = /secret|token|passw|bearer|authori[sz]ation|credential|api[-_]?key|(^|[-_])key$|signature/i;

function isSecretKey(step: PathStep | undefined): boolean {
  return typeof step === 'string' && SECRET_KEY.test(step);
}

/** `auth: { header: { name, value } }` carries its credential under a key that does not look like one. */
function isSecretStep(step: PathStep | undefined, parents: readonly PathStep[]): boolean {
  return isSecretKey(step) || (step === 'value' && parents.includes('auth'));
}

function isSecretPath(path: readonly PathStep[], context: ProblemContext): boolean {
  return isSecretStep(path.at(-1), path.slice(0, -1)) || context.secrets.some((secret) => samePath(secret, path));
}

/** Removes the value at `path` from a message about it, when that value is a secret or came from the environment. */
function redactAt(message: string, path: readonly PathStep[], context: ProblemContext): string {
  if (!isSecretPath(path, context)) return message;
  const value = valueAt(context.data, path);
  return typeof value === 'string' && value.length >= 3 ? message.split(value).join('***') : message;
}

/** Every string that must never appear in output, longest first so overlapping secrets are fully hidden. */
function collectSecretStrings(data: unknown, substitutedValues: readonly string[]): string[] {
  const secrets = new Set(substitutedValues.filter((value) => value.length >= 6));
  const visit = (value: unknown, path: PathStep[], secret: boolean): void => {
    if (typeof value === 'string') {
      if (secret && value.length >= 6) secrets.add(value);
    } else if (Array.isArray(value)) {
      value.forEach((item, index) => visit(item, [...path, index], secret));
    } else if (isPlainObject(value)) {
      for (const [key, item] of Object.entries(value)) visit(item, [...path, key], secret || isSecretStep(key, path));
    }
  };
  visit(data, [], false);
  return [...secrets].sort((a, b) => b.length - a.length);
}

function redactAll(message: string, secrets: readonly string[]): string {
  let out = message;
  for (const secret of secrets) out = out.split(secret).join('***');
  return out;
}

// --- paths ---

/** Where the deepest existing node along `path` starts in the source, for ordering problems like the file. */
function positionOf(document: Document, path: readonly PathStep[]): number {
  for (let length = path.length; length > 0; length--) {
    const node: unknown = document.getIn(path.slice(0, length), true);
    if (isNode(node) && node.range) return node.range[0];
  }
  return -1;
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/** `destinations[1].records.contact.fields.email`; keys that are not identifiers are quoted: `headers["x-api-key"]`. */
function renderPath(path: readonly PathStep[]): string {
  if (path.length === 0) return TOP_LEVEL;
  let out = '';
  for (const step of path) {
    if (typeof step === 'number') out += `[${step}]`;
    else if (IDENTIFIER.test(step)) out += out === '' ? step : `.${step}`;
    else out += `[${JSON.stringify(step)}]`;
  }
  return out;
}

function valueAt(data: unknown, path: readonly PathStep[]): unknown {
  let current = data;
  for (const step of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PathStep, unknown>)[step];
  }
  return current;
}

function samePath(a: readonly PathStep[], b: readonly PathStep[]): boolean {
  return a.length === b.length && a.every((step, index) => step === b[index]);
}

function isPrefix(prefix: readonly PathStep[], path: readonly PathStep[]): boolean {
  return prefix.length <= path.length && prefix.every((step, index) => step === path[index]);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
