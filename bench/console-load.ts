import { nameId, type DomainEvent } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import type { Runtime } from '@fastgpu/runtime';

/**
 * What the console benchmark loads, published straight to the event log as the services and
 * node agents would have published it (the way the intake and scheduler benchmarks load theirs):
 * nodes register (`NodeRegistered`), a tenant's jobs are submitted (`JobSubmitted` +
 * `SubtaskCreated`). The platform's own projections and scheduler then fold them: the jobs read
 * model, the fleet, and placements of as many sub-tasks as the fleet has GPUs.
 */
export const GPUS_PER_NODE = 8;
/** Events per publishAll call: bounds what is held in flight at once. */
const PUBLISH_BATCH = 20_000;
/** Four projects and four GPU models' worth of variety, so a filter has something to narrow. */
export const PROJECTS = ['vision', 'speech', 'search', 'robotics'] as const;

/** The job id of a tenant's j-th job: unique across tenants, and sorted as submitted. */
export function jobIdOf(tenantId: string, j: number): string {
  return `${tenantId}-${String(j).padStart(6, '0')}`;
}

export async function publishInBatches(publisher: EventPublisher, events: DomainEvent[]): Promise<void> {
  for (let start = 0; start < events.length; start += PUBLISH_BATCH) await publisher.publishAll(events.slice(start, start + PUBLISH_BATCH));
}

export function loader(runtime: Runtime) {
  const publisher = new EventPublisher(runtime.bus.js, runtime.bus.topology, 'bench/console');
  const time = runtime.clock.now().toISOString();
  const build = <T extends Parameters<EventPublisher['build']>[0]>(type: T, data: Parameters<EventPublisher['build']>[1] & object, key: string, tenantId: string | null) => {
    const id = nameId('console-bench', runtime.bus.topology.prefix, key);
    return publisher.build(type, data as never, { id, time, tenantId, correlationId: id });
  };
  return {
    /** Nodes [from, to): `n<i>`, each with GPUS_PER_NODE A100s. */
    async nodes(from: number, to: number): Promise<void> {
      const events: DomainEvent[] = [];
      for (let i = from; i < to; i++) {
        events.push(build('NodeRegistered', { nodeId: `n${i}`, gpuModel: 'a100', gpuCount: GPUS_PER_NODE, gpuMemoryGb: 80, labels: { rack: `rack-${i % 40}` }, agentEpoch: 1, registeredAt: time }, `node-${i}`, null));
      }
      await publishInBatches(publisher, events);
    },
    /** Jobs [from, to) of `tenantId` (ids jobIdOf(tenantId, j)): one one-GPU sub-task of an hour each, in PROJECTS in turn. */
    async jobs(tenantId: string, from: number, to: number): Promise<void> {
      const events: DomainEvent[] = [];
      for (let j = from; j < to; j++) {
        const jobId = jobIdOf(tenantId, j);
        const projectId = PROJECTS[j % PROJECTS.length]!;
        events.push(
          build('JobSubmitted', { jobId, tenantId, projectId, gpuModels: ['a100'], gpusPerSubtask: 1, subtaskCount: 1, runtimeMs: 3_600_000, priorityClass: 'standard', priority: 0, preemptible: false, gang: false, capacityType: 'on-demand', dependsOn: [], submittedAt: time }, `job-${jobId}`, tenantId),
          build('SubtaskCreated', { jobId, tenantId, subtaskId: `${jobId}-0`, index: 0, gpus: 1, gpuModels: ['a100'], runtimeMs: 3_600_000 }, `subtask-${jobId}`, tenantId),
        );
      }
      await publishInBatches(publisher, events);
    },
  };
}
