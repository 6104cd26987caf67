// Hands work to a connector in chunks of its declared batch size and pairs every item with its outcome:
// a thrown error fails the whole chunk, a missing outcome counts as a retryable failure.
import type { ItemOutcome } from '../destinations/types.ts';
import { RetryableError, toDeliveryError } from '../destinations/kit/errors.ts';

export async function sendInChunks<T, I>(
  entries: readonly T[],
  maxBatchSize: number,
  itemOf: (entry: T) => I,
  send: (items: I[]) => Promise<ItemOutcome[]>,
  observeSeconds: (seconds: number) => void,
  onOutcome: (entry: T, outcome: ItemOutcome) => void,
): Promise<void> {
  for (let start = 0; start < entries.length; start += maxBatchSize) {
    const chunk = entries.slice(start, start + maxBatchSize);
    const started = performance.now();
    let outcomes: ItemOutcome[];
    try {
      outcomes = await send(chunk.map(itemOf));
    } catch (error) {
      const failure = toDeliveryError(error);
      outcomes = chunk.map(() => ({ ok: false, error: failure }));
    }
    observeSeconds((performance.now() - started) / 1000);
    chunk.forEach((entry, index) => onOutcome(entry, outcomes[index] ?? { ok: false, error: new RetryableError('the connector returned no outcome for this item') }));
  }
}
