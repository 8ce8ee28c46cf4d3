/**
 * Proves the job decider, given / when / then without I/O: a submission is one JobSubmitted and
 * one SubtaskCreated per planned sub-task (ids derived from the job id, each sub-task caused by
 * the JobSubmitted, so a decision taken again is the same events); a retried submission decides
 * nothing once every event is on the subject, and only the missing sub-tasks after an append cut
 * short (wherever the holes are), under the JobSubmitted that stands; a cancellation is one JobCancelRequested, once; a job
 * never submitted and another tenant's job are the same not-found, and a job the read model says
 * ended is refused (409).
 */
import { describe, expect, it } from 'vitest';
import { checkJobRequest, deriveId, makeEvent, submitJobRequest, subjectFor, topology, type DomainEvent } from '@fastgpu/contracts';
import { spec, type BuildEvent } from '@fastgpu/eventsourcing';
import { jobDecider, type JobCommand } from './job.decider';

const topo = topology('spec');
const build: BuildEvent = (type, data, meta) => makeEvent(type, data, { ...meta, source: 'intake' }, subjectFor(topo, type, data));
const decider = jobDecider(build);
const at = '2026-10-01T10:00:00.000Z';
const request = submitJobRequest.parse({ projectId: 'p', gpuModels: ['a100'], gpusPerSubtask: 2, subtaskCount: 3, runtimeSeconds: 60, name: 'train' });
const submit = (overrides: Partial<Extract<JobCommand, { kind: 'submit' }>> = {}): JobCommand => ({
  kind: 'submit',
  jobId: 'job-1',
  tenantId: 'acme',
  request,
  checked: checkJobRequest(request, Date.parse(at)),
  idempotencyKey: 'key-1',
  submittedAt: at,
  ...overrides,
});
const cancel = (overrides: Partial<Extract<JobCommand, { kind: 'cancel' }>> = {}): JobCommand => ({ kind: 'cancel', jobId: 'job-1', tenantId: 'acme', requestedAt: '2026-10-01T11:00:00.000Z', reason: 'cancelled by tenant', ended: null, ...overrides });
const decided = (command: JobCommand, given: readonly DomainEvent[] = []) => decider.decide(command, given.reduce(decider.evolve, decider.initialState()));

describe('job decider', () => {
  const submitted = decided(submit());

  it('decides JobSubmitted and one SubtaskCreated per sub-task on the job subject, the same events when decided again', () => {
    expect(submitted.map((e) => e.type)).toEqual(['JobSubmitted', 'SubtaskCreated', 'SubtaskCreated', 'SubtaskCreated']);
    expect(submitted.every((e) => e.subject === topo.subjects.job('job-1'))).toBe(true);
    expect(submitted[0]).toMatchObject({ id: deriveId('job-1', 'JobSubmitted'), time: at, data: { jobId: 'job-1', tenantId: 'acme', subtaskCount: 3, runtimeMs: 60_000, name: 'train', idempotencyKey: 'key-1', submittedAt: at, capacityType: 'on-demand', preemptible: false } });
    expect(submitted[2]).toMatchObject({ id: deriveId('job-1', 'SubtaskCreated:1'), causationid: deriveId('job-1', 'JobSubmitted'), data: { subtaskId: 'job-1-1', index: 1, gpus: 2, runtimeMs: 60_000, gpuModels: ['a100'] } });
    spec(decider).given([]).when(submit()).then(submitted);
  });

  it('decides nothing for a job whose events are all on the subject (a retry)', () => {
    spec(decider).given(submitted).when(submit()).then([]);
  });

  it('completes an append cut short: only the missing sub-tasks, under the JobSubmitted that stands', () => {
    spec(decider).given(submitted.slice(0, 2)).when(submit({ submittedAt: '2026-10-01T10:00:05.000Z' })).then(submitted.slice(2));
  });

  it('completes an append that left a hole (its sub-tasks are sent together): only the missing one', () => {
    const [jobSubmitted, first, second, third] = submitted;
    spec(decider).given([jobSubmitted!, first!, third!]).when(submit()).then([second!]);
    spec(decider).given([jobSubmitted!, third!, first!, third!]).when(submit()).then([second!]);
  });

  it('decides one JobCancelRequested, once', () => {
    const cancelled = decided(cancel(), submitted);
    expect(cancelled).toHaveLength(1);
    expect(cancelled[0]).toMatchObject({ type: 'JobCancelRequested', id: deriveId('job-1', 'JobCancelRequested'), subject: topo.subjects.job('job-1'), data: { jobId: 'job-1', tenantId: 'acme', reason: 'cancelled by tenant' } });
    spec(decider).given([...submitted, ...cancelled]).when(cancel()).then([]);
  });

  it("answers a job never submitted and another tenant's job alike: not found", () => {
    spec(decider).given([]).when(cancel()).thenThrows('not-found', 'job_not_found');
    spec(decider).given(submitted).when(cancel({ tenantId: 'globex' })).thenThrows('not-found', 'job_not_found');
  });

  it('refuses to cancel a job that ended', () => {
    for (const ended of ['succeeded', 'failed', 'cancelled'] as const) spec(decider).given(submitted).when(cancel({ ended })).thenThrows('illegal-state', 'conflict');
  });
});
