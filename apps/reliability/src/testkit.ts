import { makeEvent, newEventId, subjectFor, topology, type DomainEvent, type EventData, type EventType } from '@fastgpu/contracts';

/** Builds valid domain events for the pure specs (no bus): ids are fresh unless given. */
const topo = topology('spec');

export function event<T extends EventType>(type: T, data: EventData<T>, id: string = newEventId()): DomainEvent<T> {
  return makeEvent(type, data, { id, source: 'spec', time: '2026-11-01T00:00:00.000Z', tenantId: null, correlationId: id }, subjectFor(topo, type, data));
}

export const at = (iso: string) => Date.parse(iso);
