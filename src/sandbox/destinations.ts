// The connectors the sandbox runs beside its HTTP sink, each with its simulator (see destination-entry.ts).
// Adding a connector to `npm start` is one line here.
import type { SandboxDestinationEntry } from './destination-entry.ts';
import { intercomSandbox } from './intercom/sandbox-entry.ts';
import { mondaySandbox } from './monday/sandbox-entry.ts';
import { momentisSandbox } from './momentis/sandbox-entry.ts';
import { ometriaSandbox } from './ometria/sandbox-entry.ts';
import { novomindSandbox } from './novomind/sandbox-entry.ts';

export const sandboxDestinations: readonly SandboxDestinationEntry[] = [intercomSandbox, ometriaSandbox, mondaySandbox, novomindSandbox, momentisSandbox];
