/**
 * Proves the one rule projections judge messages by (live runner and replay alike): a type header
 * naming an unread type skips the body unread; otherwise the body decides — not JSON, invalid, or
 * naming another type than its header is rejected (dead-letter), an unread body type is skipped,
 * a valid wanted event is decoded. A rejected message names its type and id when they can be
 * read, and a consumer that stops on undecodable events stops at those it may read.
 */
import { describe, expect, it } from 'vitest';
import { encodeEvent, makeEvent, type DomainEvent } from '@fastgpu/contracts';
import { headerType, judgeMessage, mustStopAt } from './message-decoding';

const started = makeEvent(
  'SubtaskStarted',
  { jobId: 'j1', tenantId: 'acme', subtaskId: 'j1s0', attempt: 1, nodeId: 'n1', leaseEpoch: 1, startedAt: '2026-03-01T00:00:00.000Z' },
  { id: 'e1', source: 'test', time: '2026-03-01T00:00:00.000Z', tenantId: 'acme', correlationId: 'j1' },
  'fgpu.evt.agent.node.n1',
) as DomainEvent;
const body = encodeEvent(started);
const wanted = new Set(['SubtaskStarted', 'SubtaskCompleted']);
const bytes = (text: string) => new TextEncoder().encode(text);

describe('judgeMessage', () => {
  it('decodes a wanted event, with or without a matching type header', () => {
    for (const type of ['SubtaskStarted', undefined]) {
      const verdict = judgeMessage(body, type, wanted);
      expect(verdict).toEqual({ kind: 'event', event: { ...started } });
    }
  });

  it('skips a message whose header names an unread type without reading its body', () => {
    expect(judgeMessage(bytes('not json at all'), 'JobSubmitted', wanted)).toEqual({ kind: 'skip' });
  });

  it('skips a valid body of an unread type when there is no header', () => {
    const other = encodeEvent({ ...started, type: 'NodeRegistered' } as unknown as DomainEvent);
    expect(judgeMessage(other, undefined, wanted)).toEqual({ kind: 'skip' });
  });

  it('rejects a body that is not JSON when the header names a wanted type or is absent', () => {
    for (const type of ['SubtaskStarted', undefined]) {
      const verdict = judgeMessage(bytes('{"oops"'), type, wanted);
      expect(verdict.kind).toBe('reject');
      expect(verdict.kind === 'reject' && verdict.reason).toMatch(/body is not JSON/);
    }
  });

  it('rejects a body whose type differs from its header, naming both', () => {
    const verdict = judgeMessage(body, 'SubtaskCompleted', wanted);
    expect(verdict).toEqual({ kind: 'reject', reason: 'the Ce-Type header names SubtaskCompleted but the body\'s type is "SubtaskStarted"', type: 'SubtaskCompleted', eventId: 'e1' });
  });

  it('rejects an invalid payload of a wanted type with the field and reason', () => {
    const invalid = bytes(JSON.stringify({ ...started, data: { ...started.data, attempt: 0 } }));
    const verdict = judgeMessage(invalid, 'SubtaskStarted', wanted);
    expect(verdict.kind === 'reject' && verdict.reason).toMatch(/invalid SubtaskStarted data: attempt/);
  });
});

describe('rejected messages name what could be read of them, and money consumers stop at the ones they may read', () => {
  it('a U+0000 in a stored wanted event is rejected with the field, its type and id', () => {
    const poisoned = bytes(JSON.stringify({ ...started, data: { ...started.data, nodeId: 'n1', jobId: 'j1' }, id: 'e-nul' }).replace('"j1s0"', '"j1\\u0000s0"'));
    const verdict = judgeMessage(poisoned, 'SubtaskStarted', wanted);
    expect(verdict).toMatchObject({ kind: 'reject', type: 'SubtaskStarted', eventId: 'e-nul' });
    expect(verdict.kind === 'reject' && verdict.reason).toMatch(/subtaskId/);
    expect(verdict.kind === 'reject' && mustStopAt(verdict, wanted)).toBe(true);
  });

  it('stops at a rejected message of a read type or of no known type, not at one naming another type', () => {
    expect(mustStopAt({ type: 'SubtaskStarted' }, wanted)).toBe(true);
    expect(mustStopAt({}, wanted)).toBe(true);
    expect(mustStopAt({ type: 'NodeRegistered' }, wanted)).toBe(false);
    const notJson = judgeMessage(bytes('{"oops"'), undefined, wanted);
    expect(notJson.kind === 'reject' && mustStopAt(notJson, wanted)).toBe(true);
  });
});

describe('headerType', () => {
  it('reads Ce-Type and treats an empty or missing header as none', () => {
    const headers = (value?: string) => ({ get: (name: string) => (name === 'Ce-Type' && value !== undefined ? value : '') });
    expect(headerType(headers('SubtaskStarted'))).toBe('SubtaskStarted');
    expect(headerType(headers(''))).toBeUndefined();
    expect(headerType(headers())).toBeUndefined();
    expect(headerType(undefined)).toBeUndefined();
  });
});
