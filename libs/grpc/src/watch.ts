import { decodeEvent, type DomainEvent } from '@fastgpu/contracts';
import { StreamFollower, type Bus } from '@fastgpu/messaging';

/** Wait for a job's first event before giving up on finding where its history starts. */
const FIRST_EVENT_WAIT_MS = 2000;

export interface WatchedEvent {
  sequence: number;
  subject: string;
  event: DomainEvent;
}

/** The stream sequence of a job's first event (JobSubmitted), or undefined. */
export async function firstSequenceOfJob(bus: Bus, jobId: string): Promise<number | undefined> {
  const consumer = await bus.js.consumers.get(bus.topology.streams.events, { filter_subjects: bus.topology.subjects.job(jobId) });
  const first = await consumer.next({ expires: FIRST_EVENT_WAIT_MS });
  await consumer.delete().catch(() => undefined);
  return first?.seq;
}

/**
 * Follows the domain log from `fromSequence` and hands over the events about one job (any
 * subject: intake, scheduler, node reports, usage) in log order, until `onEvent` returns
 * false or `stop()` is called.
 */
export function watchJob(bus: Bus, jobId: string, fromSequence: number, onEvent: (event: WatchedEvent) => boolean | Promise<boolean>): { done: Promise<void>; stop(): Promise<void> } {
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  let ended = false;
  const follower = new StreamFollower(bus, {
    stream: bus.topology.streams.events,
    fromSequence,
    onBatch: async (messages) => {
      for (const m of messages) {
        if (ended) return;
        const decoded = decodeEvent(m.data);
        if (!decoded.ok || (decoded.event.data as { jobId?: unknown }).jobId !== jobId) continue;
        if (!(await onEvent({ sequence: m.seq, subject: m.subject, event: decoded.event }))) {
          ended = true;
          finish();
          return;
        }
      }
    },
  });
  const stop = async () => {
    ended = true;
    await follower.stop();
    finish();
  };
  follower.start().catch(() => void stop());
  return { done: done.then(() => follower.stop()), stop };
}
