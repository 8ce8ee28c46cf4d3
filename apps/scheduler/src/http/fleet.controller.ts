import { Controller, Get, Inject, Query, UseGuards } from '@nestjs/common';
import type { z } from 'zod';
import { ApiKeyGuard, Roles } from '@fastgpu/auth';
import { ApiDoc, parseInput } from '@fastgpu/http';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { fleetResponse, fleetView, type FleetView } from '../fleet/fleet.view';
import { lastHeartbeats } from '../fleet/last-heartbeats';
import { queuedJobsInOrder, queueQuery, queueResponse } from '../fleet/queue.view';
import { CLASS_NAMES } from '../placement/scheduler.state';
import { SchedulerRunner } from '../scheduler.runner';

/** Jobs a queue read lists when the caller names no limit. */
const QUEUE_ITEMS_DEFAULT = 100;

/**
 * The scheduler's fold as the console's SRE views read it: the fleet (nodes × GPUs, as GET
 * /v1/nodes sees them, with who holds each GPU) and the queue with why each job waits.
 */
@Controller('v1')
@UseGuards(ApiKeyGuard)
@Roles('sre')
export class FleetController {
  constructor(
    @Inject(SchedulerRunner) private readonly scheduler: SchedulerRunner,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  @Get('fleet')
  @ApiDoc({
    summary: "Every node with its state (healthy, draining, drained, lost), its last stored heartbeat, and who holds each GPU index (the tenant's sub-task attempt or lease, since when), as the scheduler has folded the log",
    response: fleetResponse,
    tags: ['scheduler'],
  })
  async fleet(): Promise<FleetView> {
    const heartbeats = await lastHeartbeats(this.runtime.bus, this.scheduler.engine.state.nodeList.map((node) => node.nodeId));
    // The fold is read in one turn after the heartbeats: a view consistent with itself.
    return fleetView(this.scheduler.engine.state.nodeList, heartbeats);
  }

  @Get('scheduler/queue')
  @ApiDoc({
    summary: 'The queued jobs (with pending sub-tasks) in queue order — class, then priority, submit time and log order — each with its position and why it waits (the reasons GET /v1/jobs/{id} gives its tenant), for every tenant',
    query: queueQuery,
    response: queueResponse,
    tags: ['scheduler'],
  })
  queue(@Query() query: unknown): z.output<typeof queueResponse> {
    const { limit } = parseInput(queueQuery, query, 'query');
    const engine = this.scheduler.engine;
    const { total, jobs } = queuedJobsInOrder(engine.state, limit ?? QUEUE_ITEMS_DEFAULT);
    return {
      queuedJobs: total,
      items: jobs.map((job) => {
        const explained = engine.explain(job.jobId, job.tenantId);
        return {
          jobId: job.jobId,
          tenantId: job.tenantId,
          projectId: job.projectId,
          priorityClass: CLASS_NAMES[job.classRank]!,
          priority: job.priority,
          submittedAt: new Date(job.submittedAtMs).toISOString(),
          pendingSubtasks: job.pendingCount,
          runningSubtasks: job.runningCount,
          queuePosition: explained.queuePosition ?? null,
          waiting: explained.waiting ?? null,
          code: explained.code ?? null,
        };
      }),
    };
  }
}
