/**
 * Proves the job aggregate's store (job-event-stream.ts) on real NATS JetStream, through the
 * kernel's command loop with the job decider: a submission stores JobSubmitted first and then
 * every SubtaskCreated once, and answers the subject's last sequence; submissions of the same job
 * racing each other (the same Idempotency-Key at once) still store each event exactly once; a
 * submission decided again after an append that left holes stores only the missing sub-tasks; a
 * cancellation is appended as the kernel appends it. A submission that claimed a new key is
 * decided without reading the subject first (`assumeNew`), and when the guess is wrong (the job
 * is there) it reads and decides again, storing nothing twice.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkJobRequest, decodeEvent, submitJobRequest, type DomainEvent } from '@fastgpu/contracts';
import { StreamFollower, EventPublisher } from '@fastgpu/messaging';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { jobCommands, JobEventStream } from './job-event-stream';
import { jobDecider, type JobCommand, type JobState } from './job.decider';
import { handleCommand, type CommandRunner, type EventStream } from '@fastgpu/eventsourcing';

let env: TestEnvironment;
let publisher: EventPublisher;
let commands: CommandRunner<JobState, JobCommand>;
const at = new Date().toISOString();
const SUBTASKS = 300;

const submit = (jobId: string, subtaskCount = SUBTASKS): Extract<JobCommand, { kind: 'submit' }> => {
  const request = submitJobRequest.parse({ projectId: 'p', gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount, runtimeSeconds: 60 });
  return { kind: 'submit', jobId, tenantId: 'acme', request, checked: checkJobRequest(request, Date.parse(at)), idempotencyKey: `key-${jobId}`, submittedAt: at };
};

/** Every event stored on a subject, in stream order, with its sequence. */
async function stored(subject: string): Promise<Array<{ seq: number; event: DomainEvent }>> {
  const last = await env.bus.jsm.streams.getMessage(env.bus.topology.streams.events, { last_by_subj: subject });
  const rows: Array<{ seq: number; event: DomainEvent }> = [];
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const follower = new StreamFollower(env.bus, {
    stream: env.bus.topology.streams.events,
    fromSequence: 1,
    filterSubject: subject,
    onBatch: async (messages) => {
      for (const m of messages) {
        const decoded = decodeEvent(m.data);
        if (!decoded.ok) throw new Error(decoded.reason);
        rows.push({ seq: m.seq, event: decoded.event });
        if (m.seq >= last!.seq) return done();
      }
    },
  });
  await follower.start();
  await finished;
  await follower.stop();
  return rows;
}

const subtaskIndices = (rows: Array<{ event: DomainEvent }>) => rows.flatMap(({ event }) => (event.type === 'SubtaskCreated' ? [event.data.index] : []));
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

beforeAll(async () => {
  env = await createTestEnvironment();
  publisher = new EventPublisher(env.bus.js, env.bus.topology, 'intake');
  commands = jobCommands(env.bus, publisher, jobDecider);
});
afterAll(async () => env?.cleanup());

describe('the job aggregate store', () => {
  it('stores JobSubmitted, then each sub-task once, and answers the subject’s last sequence', async () => {
    const subject = env.bus.topology.subjects.job('job-new');
    const handled = await commands(subject, submit('job-new'));
    const rows = await stored(subject);
    expect(rows[0]!.event.type).toBe('JobSubmitted');
    expect(subtaskIndices(rows).sort((a, b) => a - b)).toEqual(range(SUBTASKS));
    expect(rows).toHaveLength(SUBTASKS + 1);
    expect(handled.version).toBe(rows.at(-1)!.seq);
    expect(handled.events).toHaveLength(SUBTASKS + 1);
    // Asked again: nothing left to decide, nothing stored.
    expect((await commands(subject, submit('job-new'))).events).toEqual([]);
    expect(await stored(subject)).toHaveLength(SUBTASKS + 1);
  });

  it('stores each event once when submissions of the same job race each other', async () => {
    const subject = env.bus.topology.subjects.job('job-race');
    const outcomes = await Promise.allSettled(range(4).map(() => commands(subject, submit('job-race'))));
    const rows = await stored(subject);
    expect(rows.filter((r) => r.event.type === 'JobSubmitted')).toHaveLength(1);
    expect(rows[0]!.event.type).toBe('JobSubmitted');
    expect(subtaskIndices(rows).sort((a, b) => a - b)).toEqual(range(SUBTASKS));
    expect(new Set(rows.map((r) => r.event.id)).size).toBe(rows.length);
    // At least one of them appended; any other either completed what it read as missing or decided nothing.
    expect(outcomes.some((o) => o.status === 'fulfilled' && o.value.events.length > 0)).toBe(true);
  });

  it('completes an append that left holes with only the missing sub-tasks', async () => {
    const subject = env.bus.topology.subjects.job('job-holes');
    const decided = jobDecider((type, data, meta) => publisher.build(type, data, meta)).decide(submit('job-holes', 10), { submitted: null, created: null, cancelRequested: false });
    // An append cut short: JobSubmitted and the sub-tasks but 3 and 7 reached the log.
    for (const event of decided.filter((e) => !(e.type === 'SubtaskCreated' && [3, 7].includes(e.data.index)))) await publisher.publish(event);
    const handled = await commands(subject, submit('job-holes', 10));
    expect(handled.events.map((e) => (e.type === 'SubtaskCreated' ? e.data.index : e.type))).toEqual([3, 7]);
    const rows = await stored(subject);
    expect(subtaskIndices(rows).sort((a, b) => a - b)).toEqual(range(10));
    expect(rows).toHaveLength(11);
  });

  it('decides a new job without reading its subject, and reads and decides again when the guess was wrong', async () => {
    const subject = env.bus.topology.subjects.job('job-assumed');
    const store = new JobEventStream(env.bus, publisher);
    let reads = 0;
    const counted: EventStream<DomainEvent> = { read: (s) => (reads++, store.read(s)), append: (s, events, expected) => store.append(s, events, expected) };
    const decider = jobDecider((type, data, meta) => publisher.build(type, data, meta));
    const first = await handleCommand(counted, decider, subject, submit('job-assumed', 5), { assumeNew: true });
    expect({ reads, events: first.events.length }).toEqual({ reads: 0, events: 6 });
    const again = await handleCommand(counted, decider, subject, submit('job-assumed', 5), { assumeNew: true });
    expect({ reads, events: again.events.length, version: again.version }).toEqual({ reads: 1, events: 0, version: first.version });
    expect(await stored(subject)).toHaveLength(6);
  });

  it('appends a cancellation expecting the subject’s sequence', async () => {
    const subject = env.bus.topology.subjects.job('job-cancel');
    await commands(subject, submit('job-cancel', 2));
    const cancel: JobCommand = { kind: 'cancel', jobId: 'job-cancel', tenantId: 'acme', requestedAt: at, reason: 'no longer needed', ended: null };
    const handled = await commands(subject, cancel);
    const rows = await stored(subject);
    expect(rows.map((r) => r.event.type)).toEqual(['JobSubmitted', 'SubtaskCreated', 'SubtaskCreated', 'JobCancelRequested']);
    expect(handled.version).toBe(rows.at(-1)!.seq);
  });
});
