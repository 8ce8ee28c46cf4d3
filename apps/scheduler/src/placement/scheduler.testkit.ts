import { makeEvent, nameId, subjectFor, topology, type DomainEvent, type EventData, type EventType, type StoredEvent } from '@fastgpu/contracts';
import { decide } from './scheduler.decider';
import { defaultPolicy, type CycleCommand, type CycleResult, type Decision, type SchedulerPolicy } from './placement.types';
import { evolve } from './scheduler.evolve';
import { initialState, type SchedulerState } from './scheduler.state';

/**
 * Given / when / then for the scheduler decider: `given` appends events to an in-memory log and
 * folds them; `when` runs a cycle; `commit` appends the cycle's decisions to the log as the
 * shell would (so the next cycle sees them).
 */
export const T0 = Date.UTC(2026, 10, 25, 0, 0, 0);
export const at = (seconds: number): string => new Date(T0 + seconds * 1000).toISOString();
const topo = topology('t');

export interface JobSpec {
  jobId: string;
  tenantId?: string;
  gpuModels?: string[];
  gpus?: number;
  count?: number;
  runtimeMs?: number;
  priorityClass?: 'high' | 'standard' | 'preemptible';
  priority?: number;
  preemptible?: boolean;
  gang?: boolean;
  gangTopologyKey?: string;
  dependsOn?: Array<{ jobId: string; condition: 'afterSuccess' | 'afterAny' }>;
  retryPolicy?: { maxAttempts: number; retryOnExitCodes: number[] };
  submittedAt?: string;
}

export class SchedulerLog {
  state: SchedulerState = initialState();
  readonly events: StoredEvent[] = [];
  private counter = 0;
  policy: SchedulerPolicy = defaultPolicy;

  append<T extends EventType>(type: T, data: EventData<T>, id?: string): StoredEvent {
    const eventId = id ?? nameId('test-event', String(++this.counter));
    const tenantId = (data as { tenantId?: string }).tenantId ?? null;
    const event = makeEvent(type, data, { id: eventId, source: 'test', time: at(0), tenantId, correlationId: eventId }, subjectFor(topo, type, data));
    const stored: StoredEvent = { sequence: this.events.length + 1, subject: event.subject, event: event as DomainEvent };
    this.events.push(stored);
    evolve(this.state, stored);
    return stored;
  }

  node(nodeId: string, gpuModel = 'a100', gpuCount = 8, labels: Record<string, string> = {}): this {
    this.append('NodeRegistered', { nodeId, gpuModel, gpuCount, gpuMemoryGb: 80, labels, agentEpoch: 1, registeredAt: at(0) });
    return this;
  }

  job(spec: JobSpec): this {
    const tenantId = spec.tenantId ?? 'acme';
    const count = spec.count ?? 1;
    const gpus = spec.gpus ?? 1;
    const gpuModels = spec.gpuModels ?? ['a100'];
    const runtimeMs = spec.runtimeMs ?? 60_000;
    const submitted = this.append('JobSubmitted', {
      jobId: spec.jobId,
      tenantId,
      projectId: 'p1',
      gpuModels,
      gpusPerSubtask: gpus,
      subtaskCount: count,
      runtimeMs,
      priorityClass: spec.priorityClass ?? 'standard',
      priority: spec.priority ?? 0,
      preemptible: spec.preemptible ?? spec.priorityClass === 'preemptible',
      gang: spec.gang ?? false,
      ...(spec.gangTopologyKey ? { gangTopologyKey: spec.gangTopologyKey } : {}),
      capacityType: 'on-demand',
      dependsOn: spec.dependsOn ?? [],
      ...(spec.retryPolicy ? { retryPolicy: spec.retryPolicy } : {}),
      submittedAt: spec.submittedAt ?? at(this.counter),
    });
    for (let index = 0; index < count; index++) {
      this.append('SubtaskCreated', { jobId: spec.jobId, tenantId, subtaskId: `${spec.jobId}-${index}`, index, gpus, gpuModels, runtimeMs }, nameId(submitted.event.id, String(index)));
    }
    return this;
  }

  when(now: string, command: Partial<CycleCommand> = {}): CycleResult {
    return decide(this.state, { now, policy: this.policy, explain: true, ...command });
  }

  /** Appends decisions to the log, as the shell publishes them. */
  commit(result: CycleResult): this {
    for (const d of result.decisions) this.append(d.type, d.data, d.id);
    return this;
  }

  /** Runs a cycle and commits it. */
  cycle(now: string, command: Partial<CycleCommand> = {}): CycleResult {
    const result = this.when(now, command);
    this.commit(result);
    return result;
  }

  placed(subtaskId: string) {
    const subtask = this.state.subtasks.get(subtaskId);
    const allocation = subtask?.allocation;
    if (!allocation) throw new Error(`${subtaskId} is not placed (status ${subtask?.status})`);
    return allocation;
  }

  started(subtaskId: string, seconds: number): this {
    const a = this.placed(subtaskId);
    const s = a.subtask!;
    this.append('SubtaskStarted', { jobId: s.job.jobId, tenantId: a.tenantId, subtaskId, attempt: a.attempt, nodeId: a.node.nodeId, leaseEpoch: a.leaseEpoch, startedAt: at(seconds) });
    return this;
  }

  completed(subtaskId: string, seconds: number): this {
    const a = this.placed(subtaskId);
    const s = a.subtask!;
    this.append('SubtaskCompleted', { jobId: s.job.jobId, tenantId: a.tenantId, subtaskId, attempt: a.attempt, nodeId: a.node.nodeId, leaseEpoch: a.leaseEpoch, exitCode: 0, endedAt: at(seconds) });
    return this;
  }

  failed(subtaskId: string, seconds: number, exitCode: number, fault: 'user' | 'platform' = 'user'): this {
    const a = this.placed(subtaskId);
    const s = a.subtask!;
    this.append('SubtaskFailed', { jobId: s.job.jobId, tenantId: a.tenantId, subtaskId, attempt: a.attempt, nodeId: a.node.nodeId, leaseEpoch: a.leaseEpoch, exitCode, fault, reason: 'boom', endedAt: at(seconds) });
    return this;
  }
}

export const types = (result: CycleResult): string[] => result.decisions.map((d) => d.type);
export const ofType = <T extends Decision['type']>(result: CycleResult, type: T): Array<Extract<Decision, { type: T }>> => result.decisions.filter((d): d is Extract<Decision, { type: T }> => d.type === type);
export const placements = (result: CycleResult): Array<[string, string]> => ofType(result, 'SubtaskPlaced').map((d) => [d.data.subtaskId, d.data.nodeId]);
