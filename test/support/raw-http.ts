// HTTP/1.1 over raw node:net sockets, for tests that need what fetch hides: exact framing (no body, chunked-empty),
// connections held open mid-headers or mid-body, and seeing when the server closes a connection.
import { connect as netConnect, type Socket } from 'node:net';

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A connection to the server at `baseUrl` (http://host:port), once established. */
export function connect(baseUrl: string): Promise<Socket> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: hostname, port: Number(port) }, () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/**
 * Everything the server sends on `socket` until the connection closes (resets included), and the parsed first
 * response, if any. Bounded by `limitMs` only as a guard: a connection the server never closes fails the test.
 */
export function untilClosed(socket: Socket, limitMs = 15_000): Promise<{ text: string; response: RawResponse | undefined }> {
  return new Promise((resolve, reject) => {
    let text = '';
    const guard = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server did not close the connection within ${limitMs} ms; it sent: ${JSON.stringify(text.slice(0, 200))}`));
    }, limitMs);
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    socket.on('error', () => {}); // a reset is a close too
    socket.once('close', () => {
      clearTimeout(guard);
      resolve({ text, response: parseResponse(text)?.response });
    });
    if (socket.destroyed) {
      clearTimeout(guard);
      resolve({ text, response: parseResponse(text)?.response });
    }
  });
}

/** Sends `request` on a kept-alive `socket` and reads one Content-Length framed response. */
export function exchange(socket: Socket, request: string | Buffer): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const parsed = parseResponse(text);
      if (parsed?.complete) {
        cleanup();
        resolve(parsed.response);
      }
    };
    const onClose = () => {
      cleanup();
      reject(new Error(`the connection closed before a whole response: ${JSON.stringify(text.slice(0, 200))}`));
    };
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('close', onClose);
    };
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.write(request);
  });
}

/** One request's text: the request line, the headers given (Host added), and the body, framed as given. */
export function requestText(method: string, path: string, headers: Record<string, string | number>, body: string | Buffer = ''): Buffer {
  const head = [`${method} ${path} HTTP/1.1`, 'Host: localhost', ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)].join('\r\n');
  return Buffer.concat([Buffer.from(`${head}\r\n\r\n`, 'utf8'), Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8')]);
}

function parseResponse(text: string): { response: RawResponse; complete: boolean } | undefined {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = text.slice(end + 4);
  const length = Number(headers['content-length'] ?? 0);
  return { response: { status: Number(statusLine.split(' ')[1]), headers, body: body.slice(0, length) }, complete: Buffer.byteLength(body) >= length };
}
