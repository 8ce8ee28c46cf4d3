/**
 * Proves the contracts: envelopes round-trip and validate, unknown types and bad payloads are
 * refused with a reason (the dead-letter reason), derived ids are stable UUIDv7s, every event
 * type has a subject, and docs/event-catalogue.md matches the schemas.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { decodeEvent, deriveId, encodeEvent, eventTypes, makeEvent, nameId, newEventId, subjectFor, topology } from './index';
import { renderEventCatalogue } from './catalogue-doc';

const topo = topology('fastgpu');
const tenantCreated = () =>
  makeEvent('TenantCreated', { tenantId: 'acme', name: 'Acme', billingTimeZone: 'UTC', currency: 'USD', createdAt: '2026-11-01T00:00:00.000Z' }, { id: newEventId(), source: 'test', time: '2026-11-01T00:00:00.000Z', tenantId: 'acme', correlationId: 'c' }, topo.subjects.tenant('acme'));

describe('contracts', () => {
  it('round-trips an envelope through encode and decode', () => {
    const event = tenantCreated();
    const decoded = decodeEvent(encodeEvent(event));
    expect(decoded).toEqual({ ok: true, event });
  });

  it('gives a reason for bodies that are not valid events', () => {
    const bad = (body: unknown) => decodeEvent(new TextEncoder().encode(typeof body === 'string' ? body : JSON.stringify(body)));
    expect(bad('{oops')).toMatchObject({ ok: false, reason: expect.stringMatching(/not JSON/) });
    expect(bad({ ...tenantCreated(), type: 'Nope' })).toMatchObject({ ok: false, reason: 'unknown event type "Nope"' });
    expect(bad({ ...tenantCreated(), data: { tenantId: 'acme' } })).toMatchObject({ ok: false, reason: expect.stringMatching(/invalid TenantCreated data: name/) });
    expect(bad({ ...tenantCreated(), schemaversion: 9 })).toMatchObject({ ok: false, reason: expect.stringMatching(/newer/) });
  });

  it('derives stable, distinct UUIDv7 ids that keep the cause time', () => {
    const cause = newEventId();
    const a = deriveId(cause, 'x');
    expect(deriveId(cause, 'x')).toBe(a);
    expect(deriveId(cause, 'y')).not.toBe(a);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a.slice(0, 13)).toBe(cause.slice(0, 13));
    expect(nameId('t', 'k')).toBe(nameId('t', 'k'));
  });

  it('refuses ids that would break subjects', () => {
    expect(() => makeEvent('TenantCreated', { tenantId: 'a.b', name: 'x', billingTimeZone: 'UTC', currency: 'USD', createdAt: '2026-11-01T00:00:00.000Z' }, { id: 'e', source: 's', time: '2026-11-01T00:00:00.000Z', tenantId: null, correlationId: 'c' }, 's')).toThrow(/tenantId/);
  });

  it('assigns every event type a subject under the events prefix', () => {
    for (const type of eventTypes) {
      const data = new Proxy({}, { get: () => 'x' });
      expect(subjectFor(topo, type, data as never)).toMatch(/^fastgpu\.evt\.[a-z]+\.[a-z]+\.[A-Za-z0-9_-]+$/);
    }
  });

  it('keeps docs/event-catalogue.md in step with the schemas (npm run catalogue)', () => {
    expect(readFileSync(new URL('../../../docs/event-catalogue.md', import.meta.url), 'utf8')).toBe(renderEventCatalogue());
  });
});
