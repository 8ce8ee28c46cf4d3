import { get, type ClientRequest, type IncomingMessage } from 'node:http';
import { eventually } from '@fastgpu/testing';

/** One Server-Sent Events message as a client reads it. */
export interface SseMessage {
  id?: string;
  event?: string;
  data: string;
}

export interface SseClient {
  status: number;
  headers: Headers;
  /** The JSON body of a refusal (not 200). */
  error?: unknown;
  messages: SseMessage[];
  comments: string[];
  /** Waits until a message matches (bounded by eventually's timeout). */
  waitFor(match: (message: SseMessage) => boolean, what: string): Promise<SseMessage>;
  /** Set once the server ended the response. */
  readonly ended: boolean;
  close(): void;
}

/**
 * Reads a text/event-stream as the browser console does (the key in the Authorization header),
 * parsing messages as they arrive: fields `id`, `event`, `data`, a blank
 * line ending each message, lines starting with `:` being comments.
 */
export async function openSse(url: string, headers: Record<string, string>): Promise<SseClient> {
  // node:http rather than fetch: an aborted fetch left undici opening a spare connection that kept the server from closing.
  const { request, response } = await new Promise<{ request: ClientRequest; response: IncomingMessage }>((resolve, reject) => {
    const req = get(url, { headers }, (res) => resolve({ request: req, response: res }));
    req.on('error', reject);
  });
  const messages: SseMessage[] = [];
  const comments: string[] = [];
  let ended = false;
  const status = response.statusCode ?? 0;
  let error: unknown;
  response.setEncoding('utf8');
  if (status === 200) {
    let buffer = '';
    response.on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const message: SseMessage = { data: '' };
        let isMessage = false;
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) comments.push(line.slice(1).trim());
          else {
            const colon = line.indexOf(':');
            const field = line.slice(0, colon);
            const value = line.slice(colon + 1).replace(/^ /, '');
            isMessage = true;
            if (field === 'id') message.id = value;
            else if (field === 'event') message.event = value;
            else if (field === 'data') message.data += value;
          }
        }
        if (isMessage) messages.push(message);
      }
    });
    response.on('close', () => (ended = true));
  } else {
    let text = '';
    for await (const chunk of response) text += chunk as string;
    error = JSON.parse(text);
    ended = true;
  }
  return {
    ...(error !== undefined ? { error } : {}),
    status,
    headers: new Headers(Object.entries(response.headers).flatMap(([name, value]) => (value === undefined ? [] : [[name, String(value)] as [string, string]]))),
    messages,
    comments,
    get ended() {
      return ended;
    },
    waitFor: (match, what) => eventually(() => messages.find(match), { message: `no live message: ${what}` }),
    close: () => void request.destroy(),
  };
}
