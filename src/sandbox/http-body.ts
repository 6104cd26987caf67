// Reads a request body whole, for the local HTTP peers (sink, simulators, bench handlers). A connection that
// breaks mid-body gives what arrived: the peer then answers it as the malformed request it is.
import type { IncomingMessage } from 'node:http';

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', () => resolve(Buffer.concat(chunks)));
  });
}
