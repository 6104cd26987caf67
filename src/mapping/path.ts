// Path expressions over commercetools JSON: `email`, `addresses[0].firstName`, `custom.fields.tier`, and filters
// that pick a list element by a field: `addresses[?id=defaultShippingAddressId].city` (compared with another
// path of the same resource) or `lineItems[?productKey='gift-card']` (with a literal); `lineItems[*].quantity`
// reads the rest of the path in every element and gives the list of what it found.
// Compiled once at start-up into a list of steps; evaluation is a tight loop with no parsing.

/** A list element whose `key` equals a literal or the value at a path of the whole resource. */
export interface FilterStep {
  key: string;
  equals: { literal: string | number } | { root: PathStep[] };
}

/** `[*]`: every element of a list. */
export interface EachStep {
  each: true;
}

/**
 * JSONata's way into lists: each element when the value is a list (lists in it too), else the value itself. No path
 * written in a mapping has it; it stands between the names of a path read from a JSONata expression, which cannot
 * tell where the lists are (`order.discountCodes.discountCode`).
 */
export interface FlattenStep {
  flatten: true;
}

export type PathStep = string | number | FilterStep | EachStep | FlattenStep;

export const EACH: EachStep = { each: true };
export const FLATTEN: FlattenStep = { flatten: true };

export class PathSyntaxError extends Error {
  override readonly name = 'PathSyntaxError';
}

const NAME = /^[A-Za-z_$][\w$-]*$/;
const BRACKETS = /\[(\d+)\]|\[\?([A-Za-z_$][\w$-]*)=([^\]]+)\]|\[(\*)\]/g;

/** Compiles `a.b[0].c` into ['a', 'b', 0, 'c']; throws PathSyntaxError naming the bad part. */
export function compilePath(expression: string): PathStep[] {
  const trimmed = expression.trim();
  if (trimmed === '') throw new PathSyntaxError('path is empty');
  const steps: PathStep[] = [];
  for (const segment of segments(trimmed)) {
    const open = segment.indexOf('[');
    const name = open === -1 ? segment : segment.slice(0, open);
    const brackets = open === -1 ? '' : segment.slice(open);
    const parsed = [...brackets.matchAll(BRACKETS)];
    const valid = (name === '' || NAME.test(name)) && parsed.map((m) => m[0]).join('') === brackets && (name !== '' || brackets !== '');
    if (!valid) {
      throw new PathSyntaxError(`"${segment}" is not a valid path segment in "${trimmed}" (expected name, name[0], name[*], name[?key=path] or name[?key='text'])`);
    }
    if (name !== '') steps.push(name);
    for (const [, index, key, value, star] of parsed) {
      steps.push(star !== undefined ? EACH : index !== undefined ? Number(index) : { key: key!, equals: filterValue(value!.trim(), trimmed) });
    }
  }
  return steps;
}

/** Splits on the dots that are not inside brackets (a filter's path has dots of its own). */
function segments(expression: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < expression.length; i += 1) {
    const char = expression[i];
    if (char === '[') depth += 1;
    else if (char === ']') depth = Math.max(0, depth - 1);
    else if (char === '.' && depth === 0) {
      out.push(expression.slice(start, i));
      start = i + 1;
    }
  }
  out.push(expression.slice(start));
  return out;
}

function filterValue(text: string, expression: string): FilterStep['equals'] {
  const quoted = /^'([^']*)'$|^"([^"]*)"$/.exec(text);
  if (quoted) return { literal: quoted[1] ?? quoted[2] ?? '' };
  if (/^-?\d+(\.\d+)?$/.test(text)) return { literal: Number(text) };
  try {
    return { root: compilePath(text) };
  } catch (error) {
    throw new PathSyntaxError(`the filter value "${text}" in "${expression}" is neither quoted text, a number nor a path: ${(error as Error).message}`);
  }
}

/**
 * Reads a compiled path; a missing step anywhere yields undefined. Filters compare against `root`. After `[*]`
 * the result is the list of what the rest of the path finds in each element (missing ones left out, lists found
 * by a further `[*]` flattened into it).
 */
export function readPath(value: unknown, steps: readonly PathStep[], root: unknown = value, from = 0): unknown {
  let current = value;
  for (let at = from; at < steps.length; at += 1) {
    const step = steps[at]!;
    if (current === null || typeof current !== 'object') return undefined;
    if (typeof step === 'object' && 'flatten' in step) {
      if (!Array.isArray(current)) continue;
      // Like JSONata: a list in the list is read into too, and what the elements give is one flat list.
      const found: unknown[] = [];
      for (const element of current as unknown[]) {
        const item = readPath(element, steps, root, Array.isArray(element) ? at : at + 1);
        if (item === undefined) continue;
        if (Array.isArray(item)) found.push(...(item as unknown[]));
        else found.push(item);
      }
      return found;
    }
    if (typeof step === 'object' && 'each' in step) {
      if (!Array.isArray(current)) return undefined;
      const found: unknown[] = [];
      const nested = steps.indexOf(EACH, at + 1) !== -1;
      for (const element of current as unknown[]) {
        const item = readPath(element, steps, root, at + 1);
        if (item === undefined) continue;
        if (nested && Array.isArray(item)) found.push(...(item as unknown[]));
        else found.push(item);
      }
      return found;
    }
    if (typeof step === 'object') {
      const position = filteredIndex(current, step, root);
      if (position === -1) return undefined;
      current = (current as unknown[])[position];
      continue;
    }
    current = (current as Record<string | number, unknown>)[step];
  }
  return current;
}

/**
 * The plain paths (names and indexes only) a path with `[*]` or filter steps reaches in `value`: one per element it
 * goes through, for writing at those places (the reference expander sets `obj` there).
 */
export function concretePaths(value: unknown, steps: readonly PathStep[], root: unknown = value, from = 0, prefix: readonly (string | number)[] = []): Array<Array<string | number>> {
  let current = value;
  const at: Array<string | number> = [...prefix];
  for (let index = from; index < steps.length; index += 1) {
    const step = steps[index]!;
    if (current === null || typeof current !== 'object') return [];
    if (typeof step === 'object' && 'flatten' in step) {
      if (!Array.isArray(current)) continue;
      // A list in the list is gone into as well: the same step again, one level down.
      return (current as unknown[]).flatMap((element, position) => concretePaths(element, steps, root, Array.isArray(element) ? index : index + 1, [...at, position]));
    }
    if (typeof step === 'object' && 'each' in step) {
      if (!Array.isArray(current)) return [];
      return (current as unknown[]).flatMap((element, position) => concretePaths(element, steps, root, index + 1, [...at, position]));
    }
    if (typeof step === 'object') {
      const position = filteredIndex(current, step, root);
      if (position === -1) return [];
      at.push(position);
      current = (current as unknown[])[position];
      continue;
    }
    at.push(step);
    current = (current as Record<string | number, unknown>)[step];
  }
  return [at];
}

/** Where in the list `current` the first element the filter picks is; -1 for none (or no list). */
function filteredIndex(current: unknown, step: FilterStep, root: unknown): number {
  if (!Array.isArray(current)) return -1;
  const expected = 'literal' in step.equals ? step.equals.literal : readPath(root, step.equals.root);
  if (expected === undefined || expected === null) return -1;
  return (current as unknown[]).findIndex((item) => item !== null && typeof item === 'object' && (item as Record<string, unknown>)[step.key] === expected);
}

/** The names a path reads (for deciding whether it passes through personal data). */
export function pathNames(steps: readonly PathStep[]): string[] {
  return steps.flatMap((step) => (typeof step === 'string' ? [step] : typeof step === 'object' && 'key' in step ? [step.key] : []));
}
