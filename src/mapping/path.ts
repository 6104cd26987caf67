// Path expressions over commercetools JSON: `email`, `addresses[0].firstName`, `custom.fields.tier`.
// Compiled once at start-up into a list of steps; evaluation is a tight loop with no parsing.
// The full mapping language (templates, transforms, JSONata) grows beside this module.

export type PathStep = string | number;

export class PathSyntaxError extends Error {
  override readonly name = 'PathSyntaxError';
}

const SEGMENT = /^([A-Za-z_$][\w$-]*)?((?:\[\d+\])*)$/;

/** Compiles `a.b[0].c` into ['a', 'b', 0, 'c']; throws PathSyntaxError naming the bad part. */
export function compilePath(expression: string): PathStep[] {
  const trimmed = expression.trim();
  if (trimmed === '') throw new PathSyntaxError('path is empty');
  const steps: PathStep[] = [];
  for (const segment of trimmed.split('.')) {
    const match = SEGMENT.exec(segment);
    if (!match || (match[1] === undefined && match[2] === '')) {
      throw new PathSyntaxError(`"${segment}" is not a valid path segment in "${trimmed}" (expected name, name[0] or [0])`);
    }
    if (match[1] !== undefined) steps.push(match[1]);
    for (const index of (match[2] ?? '').matchAll(/\[(\d+)\]/g)) steps.push(Number(index[1]));
  }
  return steps;
}

/** Reads a compiled path; a missing step anywhere yields undefined. */
export function readPath(value: unknown, steps: readonly PathStep[]): unknown {
  let current = value;
  for (const step of steps) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string | number, unknown>)[step];
  }
  return current;
}
