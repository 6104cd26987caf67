// Every destination type ctbridge knows. A new connector is one folder under src/destinations/ and one line here.
import type { DestinationDefinition } from './types.ts';
import { httpDestination } from './http/index.ts';
import { intercomDestination } from './intercom/index.ts';
import { mondayDestination } from './monday/index.ts';
import { ometriaDestination } from './ometria/index.ts';
import { restDestination } from './rest/index.ts';
import { novomindDestination } from './novomind/index.ts';
import { momentisDestination } from './momentis/index.ts';

export const destinationDefinitions: readonly DestinationDefinition[] = [httpDestination, intercomDestination, ometriaDestination, mondayDestination, restDestination, novomindDestination, momentisDestination];

export function findDestinationDefinition(type: string): DestinationDefinition | undefined {
  return destinationDefinitions.find((definition) => definition.type === type);
}
