import { deriveId, newEventId, type DomainEvent, type EventData, type EventType } from '@fastgpu/contracts';
import { EventPublisher, type Bus } from '@fastgpu/messaging';

/** Builds and publishes domain events for metering tests, with times given by the test. */
export class History {
  readonly publisher: EventPublisher;
  constructor(readonly bus: Bus) {
    this.publisher = new EventPublisher(bus.js, bus.topology, 'metering-test');
  }

  event<T extends EventType>(type: T, data: EventData<T>, id = newEventId()): DomainEvent<T> {
    const tenantId = (data as { tenantId?: string }).tenantId ?? null;
    return this.publisher.build(type, data, { id, time: '2026-03-01T00:00:00.000Z', tenantId, correlationId: id });
  }

  async publish(...events: DomainEvent[]): Promise<number> {
    let last = 0;
    for (const event of events) last = (await this.publisher.publish(event)).sequence;
    return last;
  }

  /** Placed + started + completed for one sub-task attempt. */
  subtask(options: { tenantId?: string; projectId?: string; jobId: string; subtaskId: string; attempt?: number; nodeId?: string; gpus?: number; gpuModel?: string; leaseEpoch?: number; startMs: number; endMs?: number }) {
    const { tenantId = 'acme', projectId = 'p1', jobId, subtaskId, attempt = 1, nodeId = 'n1', gpus = 4, gpuModel = 'H100', leaseEpoch = 1 } = options;
    const report = { jobId, tenantId, subtaskId, attempt, nodeId, leaseEpoch };
    const events: DomainEvent[] = [
      this.event('SubtaskPlaced', { ...report, projectId, gpuModel, gpus, gpuIndices: [], capacityType: 'on-demand', runtimeMs: 1000, placedAt: new Date(options.startMs - 500).toISOString() }),
      this.event('SubtaskStarted', { ...report, startedAt: new Date(options.startMs).toISOString() }),
    ];
    if (options.endMs !== undefined) events.push(this.event('SubtaskCompleted', { ...report, exitCode: 0, endedAt: new Date(options.endMs).toISOString() }));
    return events;
  }
}

/** The UsageRecorded id metering derives for an allocation closed by `closingEventId`. */
export const usageIdFor = (closingEventId: string, allocationKey: string) => deriveId(closingEventId, `usage:${allocationKey}`);
