// A small request/response client over a destination's fetch (fetch.ts) for connectors that speak HTTP
// themselves: the answer's text and JSON, and every failure as one of the kit's error classes, so connectors stay
// thin and never decide retry policy themselves.
import { redactUrl } from '../../observability/redact.ts';
import { errorForAnswer, type DestinationFetch } from './fetch.ts';

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface HttpResponse {
  status: number;
  headers: Headers;
  text: string;
  /** Parsed JSON body when the response was JSON, else undefined. */
  json: unknown;
}

export interface HttpClient {
  /** Sends the request; resolves for 2xx/3xx, throws a DeliveryError for everything else. */
  request(request: HttpRequest): Promise<HttpResponse>;
}

export function createHttpClient(fetch: DestinationFetch): HttpClient {
  return {
    async request(req) {
      const response = await fetch(req.url, { method: req.method, headers: req.headers, body: req.body });
      const text = await response.text();
      let json: unknown;
      if ((response.headers.get('content-type') ?? '').includes('json')) {
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
      }
      // Destinations like to echo the values they refused; DeliveryError removes personal data from the message.
      const excerpt = text ? `: ${text.slice(0, 300)}` : '';
      const failure = errorForAnswer(response.status, response.headers, `${req.method} ${redactUrl(req.url)} answered ${response.status}${excerpt}`, fetch.options);
      if (failure) throw failure;
      return { status: response.status, headers: response.headers, text, json };
    },
  };
}
