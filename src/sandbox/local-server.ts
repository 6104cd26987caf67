// Starts one of the sandbox's local HTTP peers (the sink, the destination simulators) listening on 127.0.0.1, and
// how to stop it: closing drops open keep-alive connections too, so a test's teardown never waits for a client.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface LocalServer {
  /** `http://127.0.0.1:<port>`. */
  url: string;
  close: () => Promise<void>;
}

export async function listenLocally(server: Server, port = 0, host = '127.0.0.1'): Promise<LocalServer> {
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
