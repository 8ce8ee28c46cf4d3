import type { EventData, StopSubtaskCommand } from '@fastgpu/contracts';
import type { z } from 'zod';

/**
 * What the pure deciders of the liveness loop ask the shell to do. Every effect carries a
 * deterministic id, so a restarted instance or a standby that decides the same thing publishes
 * the same `Nats-Msg-Id`, and the bus (and every consumer, by event id) keeps one copy.
 */
export type ReliabilityEventType = 'NodeLost' | 'NodeRecovered' | 'NodeDrained' | 'ReportRejected';

export type EventEffect = {
  [T in ReliabilityEventType]: { kind: 'event'; id: string; type: T; data: EventData<T>; causationId?: string };
}[ReliabilityEventType];

export interface CommandEffect {
  kind: 'command';
  nodeId: string;
  command: z.infer<typeof StopSubtaskCommand>;
}

export type Effect = EventEffect | CommandEffect;

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
