// What a connector brings to the sandbox (`npm start`): its simulator, started and stopped with the sandbox, the
// destination block it adds to the sandbox's configuration, and, once the sandbox has drained, a check of what
// arrived against commercetools. The sandbox runs the entries of `sandbox/destinations.ts` and names none of them.
import type { CommercetoolsClient } from '../commercetools/client.ts';
import type { SeededShop } from './seed.ts';

export interface SandboxDestinationEntry {
  /** The destination's name in the sandbox's configuration. */
  readonly name: string;
  start(): Promise<StartedSandboxDestination>;
}

export interface StartedSandboxDestination {
  /** The destination block of the configuration (before validation), `name` included. */
  readonly destination: Record<string, unknown>;
  /** One line for the banner: where the simulator listens and what it receives. */
  readonly banner: string;
  /**
   * After the initial load, with ctbridge listening: what needs its URL or commercetools (webhooks registered,
   * custom Types), and edits made in the destination that flow back (two-way sync). Awaited before the generator runs.
   */
  connect?(context: SandboxConnectContext): Promise<void>;
  /**
   * What shoppers do because of the destination, called every few seconds while the generator runs and once more
   * when it stops (`final`), e.g. an order placed with a reward's discount code. Changes go through `placeOrder`,
   * which posts their notifications as the generator's own.
   */
  act?(context: SandboxActContext): Promise<void>;
  /** Compares what arrived with what commercetools holds now, once the sandbox has drained. */
  check(context: SandboxCheckContext): Promise<SandboxDestinationCheck>;
  stop(): Promise<void>;
}

export interface SandboxCheckContext {
  commercetools: CommercetoolsClient;
  shop: SeededShop;
  /** Every customer of the run: seeded and created by the generator. */
  customerIds: string[];
  /** A readable name for a resource (`customer anna-k`). */
  label: (id: string, typeId: string) => string;
}

export interface SandboxDestinationCheck {
  matching: number;
  total: number;
  /** What differs, one line per resource. */
  mismatches: string[];
  /** The summary line: what matched, and the simulator's own figures. */
  summary: string;
}

export interface SandboxActContext {
  commercetools: CommercetoolsClient;
  /** An order of the customer's market, its cart holding `discountCodes`; throws what commercetools answered. */
  placeOrder: (customerId: string, options: { discountCodes?: readonly string[] }) => Promise<{ id: string; orderNumber: string }>;
  /** A line of the live feed. */
  line: (kind: string, text: string) => void;
  label: (id: string, typeId: string) => string;
  /** The generator has stopped: the last call, before ctbridge drains. */
  final: boolean;
}

export interface SandboxConnectContext {
  /** ctbridge's base URL. */
  url: string;
  commercetools: CommercetoolsClient;
  /** Writes a line to the sandbox's output. */
  note: (line: string) => void;
  label: (id: string, typeId: string) => string;
}
