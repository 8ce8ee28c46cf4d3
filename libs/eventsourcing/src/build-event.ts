import type { DomainEvent, EventData, EventMeta, EventType } from '@fastgpu/contracts';

/**
 * Builds one catalogue event on its subject: what a decider that emits domain events is given,
 * so it stays pure. The shell passes `publisher.build` (libs/messaging), bound to its topology
 * and source; a test passes the same over a test topology.
 */
export type BuildEvent = <T extends EventType>(type: T, data: EventData<T>, meta: Omit<EventMeta, 'source'>) => DomainEvent<T>;
