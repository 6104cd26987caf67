// Which References a JSONata expression reads through `.obj`, worked out once from its syntax tree so that the
// engine expands them before mapping, as it does for a path field. JSONata goes into lists on its own
// (`order.discountCodes.discountCode.obj.code` reads every discount code), so a path read from an expression has a
// FLATTEN step after each name: every element where there is a list, the value itself where there is none.
// What is followed, from the resource (or the Message) or from `$subject`:
//   names, also inside filters and index steps (`discountCodes[state = "MatchesCart"]`: every element is
//   expanded, the filter picks after), sort steps, object and array constructors, blocks, conditions, operators
//   and function arguments, each with the context JSONata gives it (`order.{ "c": discountCodes.{ … } }` reads
//   `discountCodes` of the order), `$` (the context) and `$$` (the input).
// What is not, and is reported as unexpanded instead: an `.obj` read through a variable of the expression's own
// (`$map(codes, function($c) { $c.obj.code })`, `$x := …`), through `$orders`, a wildcard, a parent (`%`), a
// focus (`@$x`) or what a function or block gives (`$lookup(…).obj`, `(a).obj`), and one inside an object that
// is itself expanded (except a category's ancestors, which come expanded).
import { CUSTOM_OBJECTS_STEP } from './references.ts';
import { FLATTEN, type PathStep } from './path.ts';

export interface JsonataReferences {
  /** References on the resource (or Message) the expression reads: the steps before each `obj`. */
  resource: PathStep[][];
  /** References on `$subject`, the order or cart an event's message is about. */
  subject: PathStep[][];
  /** The `.obj` reads it makes that cannot be told before mapping, as written (`$c.obj`): these are not expanded. */
  unexpanded: string[];
}

type Node = Record<string, unknown>;

/** Where the current context is: known steps from the resource or the subject, or unknown. */
type Context = { root: 'resource' | 'subject'; steps: PathStep[] } | undefined;

const RESOURCE: Context = { root: 'resource', steps: [] };

export function jsonataReferences(ast: unknown): JsonataReferences {
  const found: JsonataReferences = { resource: [], subject: [], unexpanded: [] };

  function reference(context: NonNullable<Context>, written: string): void {
    const steps = context.steps.at(-1) === FLATTEN ? context.steps.slice(0, -1) : context.steps;
    if (steps.includes('obj')) {
      // Inside an expanded object: only a category's ancestors come expanded with it.
      if (steps.at(-1) !== 'ancestors') found.unexpanded.push(written);
      return;
    }
    if (steps[0] === CUSTOM_OBJECTS_STEP) {
      // `customObjects.<container>.<field>` names a custom object by where it is: names only, no lists.
      const names = steps.filter((step) => step !== FLATTEN);
      if (context.root === 'resource' && names.length === 3) found.resource.push(names);
      else found.unexpanded.push(written);
      return;
    }
    found[context.root].push(steps);
  }

  function visit(node: unknown, context: Context): void {
    if (Array.isArray(node)) {
      for (const item of node) visit(item, context);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const n = node as Node;
    switch (n.type) {
      case 'path':
        path(n, context);
        return;
      case 'unary':
        // An object constructor's keys and values, an array constructor's items, a negation's operand.
        visit(n.lhs, context);
        visit(n.expressions, context);
        visit(n.expression, context);
        return;
      case 'binary':
      case 'apply':
        visit(n.lhs, context);
        visit(n.rhs, context);
        return;
      case 'condition':
        visit(n.condition, context);
        visit(n.then, context);
        visit(n.else, context);
        return;
      case 'block':
        visit(n.expressions, context);
        visit(n.predicate, undefined);
        return;
      case 'bind':
        visit(n.rhs, context);
        return;
      case 'function':
      case 'partial':
        visit(n.arguments, context);
        visit(n.predicate, undefined);
        return;
      case 'filter':
        visit(n.expr, context);
        return;
      case 'sort':
        for (const term of (n.terms as Node[] | undefined) ?? []) visit(term.expression, context);
        return;
      case 'string':
      case 'number':
      case 'value':
      case 'regex':
      case 'variable':
      case 'name':
      case 'wildcard':
      case 'descendant':
      case 'parent':
        // `$list[0]`: a filter on a value that is not a known place.
        visit(n.predicate, undefined);
        visit(n.stages, undefined);
        return;
      default:
        // A lambda's body, a transform…: what they read from cannot be told.
        for (const child of Object.values(n)) if (child !== null && typeof child === 'object') visit(child, undefined);
    }
  }

  /** A path: each step reads from what the one before gave; a filter or constructor in it reads from that too. */
  function path(node: Node, start: Context): void {
    const steps = (node.steps as Node[] | undefined) ?? [];
    let context = start;
    const written: string[] = [];
    for (const [index, step] of steps.entries()) {
      if (step.type === 'variable') {
        const name = step.value;
        written.push(`$${String(name)}`);
        // `$`: the context; `$$`: the input; `$subject`: the event's order or cart; any other: not known here.
        if (index > 0) context = undefined;
        else context = name === '' ? start : name === '$' ? RESOURCE : name === 'subject' ? { root: 'subject', steps: [] } : undefined;
      } else if (step.type === 'name' && typeof step.value === 'string') {
        written.push(`${step.value}${Array.isArray(step.stages) && step.stages.length > 0 ? '[…]' : ''}${typeof step.focus === 'string' ? `@$${step.focus}` : ''}`);
        if (step.value === 'obj' && written.length > 1) {
          if (context !== undefined && context.steps.length > 0) reference(context, written.join('.'));
          else if (context === undefined) found.unexpanded.push(written.join('.'));
        }
        // `a@$x.b` reads `b` from the context before `a`: what follows a focus is not followed.
        context = context === undefined || step.focus !== undefined ? undefined : { root: context.root, steps: [...context.steps, step.value, FLATTEN] };
      } else if (step.type === 'sort') {
        written.push('^(…)');
        visit(step, context);
      } else {
        written.push(step.type === 'wildcard' ? '*' : step.type === 'parent' ? '%' : '(…)');
        // A constructor, a block or a function call reads from the context; what it gives is not a known place.
        visit(step, context);
        context = undefined;
      }
      // A filter or an index picks elements: its condition reads from each, and every element is expanded.
      visit(step.stages, context);
    }
    // `a{ key: value }` groups what the path gave, reading from each of its elements.
    if (node.group !== null && typeof node.group === 'object') visit((node.group as Node).lhs, context);
  }

  visit(ast, RESOURCE);
  return found;
}
