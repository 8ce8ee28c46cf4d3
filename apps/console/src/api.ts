/**
 * The one way the console talks to the API: same origin, `Authorization: Bearer <key>` on every
 * call, and every error read from the API's one error shape `{ error: { code, message, field? } }`
 * (libs/http errors.ts) into an `ApiFailure`.
 */

/** An answer other than 2xx, as the API described it. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

interface ErrorBody {
  error?: { code?: unknown; message?: unknown; field?: unknown };
}

let currentKey: string | null = null;
let onUnauthenticated: () => void = () => undefined;

/** The key every call sends (set on sign-in, cleared on sign-out). */
export function setApiKey(key: string | null, unauthenticated: () => void = () => undefined): void {
  currentKey = key;
  onUnauthenticated = unauthenticated;
}

export function authorization(): Record<string, string> {
  return currentKey ? { authorization: `Bearer ${currentKey}` } : {};
}

async function failureOf(response: Response): Promise<ApiFailure> {
  const text = await response.text().catch(() => '');
  try {
    const body = JSON.parse(text) as ErrorBody;
    const e = body.error;
    if (e && typeof e.code === 'string' && typeof e.message === 'string') {
      return new ApiFailure(response.status, e.code, e.message, typeof e.field === 'string' ? e.field : undefined);
    }
  } catch {
    // not JSON: described below by status
  }
  return new ApiFailure(response.status, 'http_' + response.status, text.slice(0, 200) || response.statusText || `HTTP ${response.status}`);
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** Calls the API and answers its JSON body (undefined for 204). */
export async function api<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...authorization(), ...options.headers };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method: options.method ?? 'GET',
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: options.signal,
  });
  if (!response.ok) {
    const failure = await failureOf(response);
    if (response.status === 401) onUnauthenticated();
    throw failure;
  }
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

/** The query string of the defined values, with its leading `?` (empty when none). */
export function query(values: Record<string, string | number | undefined | null>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) if (value !== undefined && value !== null && value !== '') params.set(name, String(value));
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** Fetches a document in another media type (PDF, CSV) and hands it to the browser as a download. */
export async function download(path: string, accept: string, fileName: string): Promise<void> {
  const response = await fetch(path, { headers: { accept, ...authorization() } });
  if (!response.ok) throw await failureOf(response);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** A new idempotency key for one user action (retries of the same action reuse it). */
export function newIdempotencyKey(): string {
  return crypto.randomUUID();
}

/** What a failure says to a person: its message, and the field at fault when the API named one. */
export function describeFailure(error: unknown): string {
  if (error instanceof ApiFailure) return error.field ? `${error.message} (${error.field})` : error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}
