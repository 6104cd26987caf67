// novomind iAGENT destination (`type: novomind`): the REST destination (destinations/rest/) with novomind's
// defaults — media type, token endpoint, error shape, paths of customers and order status notes (settings.ts) —
// and default mappings of customers and of shipment, cancellation, refund and return changes as status notes
// (defaults.ts); everything overridable in the configuration.
import { restDestinationType } from '../rest/index.ts';
import { novomindDefaultMappings } from './defaults.ts';
import { novomindSettings, novomindToRest } from './settings.ts';

export const novomindDestination = restDestinationType({
  type: 'novomind',
  description: 'novomind iAGENT over its REST API (v2 media type, OAuth2): customers, and order status changes as status notes',
  settings: novomindSettings,
  toRest: novomindToRest,
  defaultMappings: () => novomindDefaultMappings(),
});
