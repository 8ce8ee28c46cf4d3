import { deriveId, type EventData } from '@fastgpu/contracts';
import { EventPublisher } from '@fastgpu/messaging';
import { sleep, type AgentContext } from '../agent-context';
import type { RunCommand } from '../runs/command.decider';
import type { ActiveRun } from '../runs/run-book';
import type { RunRecord } from '../runs/state-store';

/** Retries of a report while NATS is unreachable, and the wait between them. */
export const PUBLISH_ATTEMPTS_MAX = 10;
export const PUBLISH_RETRY_MS = 1000;

/**
 * What the agent tells the domain log (docs/node-protocol.md, "Reports"): its registration and
 * each run's start and end. Ids derive from the command (or the node and epoch), so a repeat
 * after a restart is dropped by the bus's duplicate window.
 */
export class RunReports {
  private readonly publisher: EventPublisher;

  constructor(private readonly context: Omit<AgentContext, 'book' | 'host'>) {
    this.publisher = new EventPublisher(context.bus.js, context.bus.topology, `fastgpu/node-agent/${context.config.nodeId}`);
  }

  async registered(data: EventData<'NodeRegistered'>): Promise<void> {
    const id = deriveId(deriveId('00000000-0000-7000-8000-000000000000', data.nodeId), `registered:${data.agentEpoch}`);
    await this.withRetry(() => this.publisher.publish(this.publisher.build('NodeRegistered', data, { id, time: data.registeredAt, tenantId: null, correlationId: data.nodeId })));
  }

  async started(run: ActiveRun): Promise<void> {
    const c = run.command;
    const startedAt = run.record.startedAt ?? new Date().toISOString();
    const data: EventData<'SubtaskStarted'> = { jobId: c.jobId, tenantId: c.tenantId, subtaskId: c.subtaskId, attempt: c.attempt, nodeId: this.context.config.nodeId, leaseEpoch: c.leaseEpoch, startedAt };
    await this.publisher.publish(this.publisher.build('SubtaskStarted', data, { id: deriveId(c.commandId, 'started'), time: startedAt, tenantId: c.tenantId, correlationId: c.jobId, traceparent: run.record.traceparent }));
  }

  async ended(c: RunCommand, report: NonNullable<RunRecord['report']>, traceparent: string | undefined): Promise<void> {
    if (report.kind === 'none') return;
    const base = { jobId: c.jobId, tenantId: c.tenantId, subtaskId: c.subtaskId, attempt: c.attempt, nodeId: this.context.config.nodeId, leaseEpoch: c.leaseEpoch, endedAt: report.endedAt };
    const meta = { id: deriveId(c.commandId, 'ended'), time: report.endedAt, tenantId: c.tenantId, correlationId: c.jobId, traceparent };
    const event =
      report.kind === 'completed'
        ? this.publisher.build('SubtaskCompleted', { ...base, exitCode: 0 }, meta)
        : this.publisher.build('SubtaskFailed', { ...base, exitCode: report.exitCode, fault: report.fault, reason: report.reason, failureKind: report.failureKind }, meta);
    await this.withRetry(() => this.publisher.publish(event));
  }

  private async withRetry(publish: () => Promise<unknown>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await publish();
        return;
      } catch (error) {
        if (attempt >= PUBLISH_ATTEMPTS_MAX || this.context.closed()) throw error;
        this.context.log('warn', `publish failed (attempt ${attempt}): ${(error as Error).message}`);
        await sleep(PUBLISH_RETRY_MS);
      }
    }
  }
}
