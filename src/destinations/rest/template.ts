// The REST destination's templates: a path with {placeholders} (URL-encoded values from the item), a body template
// (any JSON whose texts may name values as {{path}}), and JSON pointers (RFC 6901) that find the destination's id
// or an error message in an answer. A placeholder the item has no value for is the item's own fault: a
// PermanentError naming it, never a request to a wrong URL.
import { PermanentError } from '../kit/index.ts';

/** What templates read: the item's ids and mapped fields (see records.ts and events.ts for the names). */
export type TemplateContext = Record<string, unknown>;

/** The value at a dotted path (`fields.orderNumber`) of the context, undefined when absent. */
export function valueAt(context: TemplateContext, path: string): unknown {
  let value: unknown = context;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

const PLACEHOLDER = /\{([A-Za-z_$][\w$]*(?:\.[\w$-]+)*)\}/g;

/** The path with its placeholders replaced by URL-encoded values; a missing or non-scalar value is a PermanentError. */
export function renderPath(template: string, context: TemplateContext): string {
  return template.replace(PLACEHOLDER, (_match, path: string) => {
    const value = valueAt(context, path);
    if (typeof value === 'string' && value !== '') return encodeURIComponent(value);
    if (typeof value === 'number' || typeof value === 'boolean') return encodeURIComponent(String(value));
    throw new PermanentError(`the path ${template} needs {${path}}, which this item does not have`);
  });
}

const WHOLE = /^\{\{\s*([A-Za-z_$][\w$]*(?:\.[\w$-]+)*)\s*\}\}$/;
const INSIDE = /\{\{\s*([A-Za-z_$][\w$]*(?:\.[\w$-]+)*)\s*\}\}/g;

/** The body template filled in: `"{{fields}}"` is that value as it is; `"Order {{fields.orderNumber}}"` text. */
export function renderBody(template: unknown, context: TemplateContext): unknown {
  if (typeof template === 'string') {
    const whole = WHOLE.exec(template);
    if (whole) return valueAt(context, whole[1]!);
    return template.replace(INSIDE, (_match, path: string) => {
      const value = valueAt(context, path);
      if (value === undefined || value === null) return '';
      if (typeof value === 'string') return value;
      if (typeof value === 'number' || typeof value === 'boolean') return String(value);
      return JSON.stringify(value) ?? '';
    });
  }
  if (Array.isArray(template)) return template.map((item) => renderBody(item, context)).filter((item) => item !== undefined);
  if (template !== null && typeof template === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(template)) {
      const rendered = renderBody(value, context);
      if (rendered !== undefined) out[key] = rendered;
    }
    return out;
  }
  return template;
}

/** The value at a JSON pointer (RFC 6901) of a parsed answer, undefined when it is not there. */
export function atPointer(document: unknown, pointer: string): unknown {
  if (pointer === '') return document;
  let value = document;
  for (const raw of pointer.slice(1).split('/')) {
    const token = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(value)) {
      if (!/^(0|[1-9]\d*)$/.test(token)) return undefined;
      value = value[Number(token)];
    } else if (value !== null && typeof value === 'object' && Object.hasOwn(value, token)) {
      value = (value as Record<string, unknown>)[token];
    } else {
      return undefined;
    }
  }
  return value;
}

/** An id from an answer: a non-empty text or a number, as text; undefined otherwise. */
export function idAt(document: unknown, pointer: string): string | undefined {
  const value = atPointer(document, pointer);
  if (typeof value === 'string' && value !== '') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}
