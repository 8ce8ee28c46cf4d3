/**
 * Proves the CloudEvents HTTP binary-mode reading: which requests are binary (a `ce-specversion`
 * header and a Content-Type that is not a CloudEvents media type), that `ce-*` headers become
 * the attributes percent-decoded as UTF-8 with `data` the body and `datacontenttype` the media
 * type without parameters, that unknown extensions are left out, and that a repeated or badly
 * percent-encoded header is refused naming the header.
 */
import { describe, expect, it } from 'vitest';
import { binaryModeEvent, isBinaryMode, MalformedHeaderError, mediaTypeOf } from './binary-mode';

const headers = {
  'content-type': 'application/json; charset=utf-8',
  'ce-specversion': '1.0',
  'ce-id': 'e-1',
  'ce-source': 'urn:partner:%C3%BCber%20cluster',
  'ce-type': 'ExternalAllocationStopped',
  'ce-time': '2026-10-24T12:00:00Z',
  'ce-subject': 'rack%2F7',
  'ce-traceparent': '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  'ce-partnerextension': 'ignored',
};

describe('binary content mode', () => {
  it('is recognised by ce-specversion unless the media type is a CloudEvents one', () => {
    expect(isBinaryMode(headers)).toBe(true);
    expect(isBinaryMode({ ...headers, 'content-type': 'application/cloudevents+json' })).toBe(false);
    expect(isBinaryMode({ ...headers, 'content-type': 'Application/CloudEvents-Batch+JSON; charset=utf-8' })).toBe(false);
    expect(isBinaryMode({ 'content-type': 'application/json' })).toBe(false);
  });
  it('reads the attributes from ce- headers, percent-decoded, and data from the body', () => {
    const data = { allocationId: 'a-1', stoppedAt: '2026-10-24T11:00:00Z' };
    expect(binaryModeEvent(headers, data)).toEqual({
      specversion: '1.0',
      id: 'e-1',
      source: 'urn:partner:über cluster',
      type: 'ExternalAllocationStopped',
      time: '2026-10-24T12:00:00Z',
      subject: 'rack/7',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      datacontenttype: 'application/json',
      data,
    });
  });
  it('keeps percent-encoded control characters for the validation to refuse', () => {
    expect(binaryModeEvent({ ...headers, 'ce-id': 'a%0D%0Ab' }, {}).id).toBe('a\r\nb');
  });
  it('refuses a repeated or badly encoded header, naming it', () => {
    expect(() => binaryModeEvent({ ...headers, 'ce-id': ['a', 'b'] }, {})).toThrow(MalformedHeaderError);
    try {
      binaryModeEvent({ ...headers, 'ce-source': 'urn:%E0%A4%A' }, {});
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ header: 'ce-source', message: expect.stringMatching(/^ce-source: /) });
    }
  });
  it('reads media types without parameters, case-insensitively', () => {
    expect(mediaTypeOf('Application/JSON ; charset=utf-8')).toBe('application/json');
    expect(mediaTypeOf(undefined)).toBeUndefined();
    expect(mediaTypeOf('')).toBeUndefined();
  });
});
