/**
 * Proves the price-book decider, given / when / then without I/O: the first publish is version 1
 * and fixes the book's currency; each later one takes the next version (its event id named after
 * book and version, so the same version is one event); a publish asking for a version that is not
 * the next is refused as `version_taken` (409), one in another currency as `currency_mismatch`
 * (422). The kernel decides again with these rules when another publisher got there first.
 */
import { describe, expect, it } from 'vitest';
import { makeEvent, nameId, subjectFor, topology, type DomainEvent, type EventData } from '@fastgpu/contracts';
import { spec, type BuildEvent } from '@fastgpu/eventsourcing';
import { priceBookDecider, type PublishPriceBookCommand } from './price-book.decider';

const topo = topology('spec');
const build: BuildEvent = (type, data, meta) => makeEvent(type, data, { ...meta, source: 'billing' }, subjectFor(topo, type, data));
const decider = priceBookDecider(build);
const at = '2026-10-01T10:00:00.000Z';
const prices: EventData<'PriceBookPublished'>['prices'] = [{ gpuModel: 'a100', capacityType: 'on-demand', pricePerGpuHour: '2.00', incrementMs: 1000, minimumMs: 60_000 }];
const publish = (extra: Partial<PublishPriceBookCommand> = {}): PublishPriceBookCommand => ({ priceBookId: 'standard', currency: 'USD', effectiveFrom: '2026-01-01T00:00:00.000Z', prices, actor: 'key-finance', publishedAt: at, ...extra });
const published = (version: number, currency = 'USD'): DomainEvent =>
  build('PriceBookPublished', { priceBookId: 'standard', version, currency, effectiveFrom: '2026-01-01T00:00:00.000Z', prices, publishedBy: 'key-finance', publishedAt: at }, { id: nameId('PriceBookPublished', 'standard', String(version)), time: at, tenantId: null, correlationId: nameId('PriceBookPublished', 'standard', String(version)) });

describe('price-book decider', () => {
  it('publishes version 1 of a new book, named after book and version', () => {
    spec(decider).given([]).when(publish()).then([published(1)]);
    spec(decider).given([]).when(publish({ version: 1 })).then([published(1)]);
  });
  it('takes the next version after the ones on the log', () => {
    spec(decider).given([published(1), published(2)]).when(publish()).then([published(3)]);
    expect((decider.decide(publish(), [published(1)].reduce(decider.evolve, decider.initialState()))[0] as DomainEvent<'PriceBookPublished'>).data.version).toBe(2);
  });
  it('refuses a version that is not the next (409 version_taken)', () => {
    spec(decider).given([published(1)]).when(publish({ version: 1 })).thenThrows('conflict', 'version_taken');
    spec(decider).given([]).when(publish({ version: 2 })).thenThrows('conflict', 'version_taken');
  });
  it("refuses another currency than the book's (422 currency_mismatch)", () => {
    spec(decider).given([published(1)]).when(publish({ currency: 'EUR' })).thenThrows('validation', 'currency_mismatch');
  });
});
