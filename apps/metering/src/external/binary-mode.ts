/**
 * CloudEvents HTTP binding, binary content mode (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/http-protocol-binding.md#31-binary-content-mode):
 * the attributes travel as `ce-<name>` headers and the body is the event's `data`, described by
 * `Content-Type`. It is the official SDKs' default. Here it is turned into the structured shape
 * `POST /v1/events` validates, so both modes meet the same rules.
 */

/** Media types that mean the body is the event itself (structured mode) or a batch. */
export const CLOUDEVENTS_MEDIA_TYPES = ['application/cloudevents+json', 'application/cloudevents-batch+json'] as const;

/** Context attributes read from `ce-` headers; other extensions are ignored, as in structured mode. */
const BINARY_ATTRIBUTES = ['specversion', 'id', 'source', 'type', 'time', 'subject', 'tenantid', 'traceparent'] as const;

export type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** A header that cannot be read; the controller answers 400 with it as the field. */
export class MalformedHeaderError extends Error {
  constructor(
    readonly header: string,
    message: string,
  ) {
    super(`${header}: ${message}`);
  }
}

/** The media type of a `Content-Type` value, lower case, without parameters. */
export function mediaTypeOf(contentType: string | undefined): string | undefined {
  return contentType?.split(';')[0]?.trim().toLowerCase() || undefined;
}

/**
 * Binary mode is a request whose `Content-Type` is not a CloudEvents media type and which carries
 * `ce-specversion` (the binding's rule: the media type says structured or batch, else binary).
 */
export function isBinaryMode(headers: RequestHeaders): boolean {
  const contentType = single(headers, 'content-type');
  const mediaType = mediaTypeOf(contentType);
  return headers['ce-specversion'] !== undefined && !(CLOUDEVENTS_MEDIA_TYPES as readonly string[]).includes(mediaType ?? '');
}

/**
 * The structured-mode object for a binary-mode request: each `ce-` attribute percent-decoded as
 * UTF-8 (the binding percent-encodes what is not printable ASCII), `datacontenttype` from
 * `Content-Type` (without parameters such as `charset`), `data` the parsed body. A header given
 * twice or with a broken percent-encoding throws MalformedHeaderError.
 */
export function binaryModeEvent(headers: RequestHeaders, body: unknown): Record<string, unknown> {
  const event: Record<string, unknown> = {};
  for (const attribute of BINARY_ATTRIBUTES) {
    const name = `ce-${attribute}`;
    const value = single(headers, name);
    if (value !== undefined) event[attribute] = percentDecode(value, name);
  }
  const mediaType = mediaTypeOf(single(headers, 'content-type'));
  if (mediaType !== undefined) event.datacontenttype = mediaType;
  event.data = body;
  return event;
}

function single(headers: RequestHeaders, name: string): string | undefined {
  const value = headers[name];
  if (Array.isArray(value)) throw new MalformedHeaderError(name, `given ${value.length} times; give it once`);
  return value;
}

function percentDecode(value: string, header: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new MalformedHeaderError(header, 'not a valid percent-encoding of UTF-8');
  }
}
