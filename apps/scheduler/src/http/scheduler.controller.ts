import { Body, Controller, Get, HttpCode, Inject, Param, Post, Put, Query, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { multiLineText, singleLineText, submitJobRequest } from '@fastgpu/contracts';
import { ApiKeyGuard, CurrentPrincipal, Roles, type Principal } from '@fastgpu/auth';
import { ApiDoc, ApiError, notFound, parseInput, unprocessable } from '@fastgpu/http';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { capacityPlan, CapacityPlanError } from '../capacity/capacity-plan';
import { freeByModel, fragmentation } from '../placement/metrics';
import { SchedulerRunner } from '../scheduler.runner';
import { schedulerPolicySchema } from '../placement/placement.types';
import { dryRunJob } from './job-dry-run';
import { capacityPlanResponse, drainResponse, dryRunResponse, nodesResponse, policyResponse, schedulerStatusResponse } from './scheduler.responses';

/** Decimal strings, read exactly by capacityPlan; text a store could not hold is malformed (400) before that. */
export const capacityPlanQuery = z.object({
  gpuHours: singleLineText(40, 1),
  hours: singleLineText(40, 1),
  load: singleLineText(40).default('1'),
  efficiency: singleLineText(40).default('1'),
});

export const setPolicyRequest = z.object({ policy: schedulerPolicySchema, reason: multiLineText(500, 1) });

const drainRequest = z.object({ reason: multiLineText(500, 1).default('drained by an operator') });

/** Scheduler HTTP: dry-run placement, the capacity planner, the fleet, node drain/undrain, status. */
@Controller('v1')
@UseGuards(ApiKeyGuard)
export class SchedulerController {
  constructor(
    @Inject(SchedulerRunner) private readonly scheduler: SchedulerRunner,
    @Inject(RUNTIME) private readonly runtime: Runtime,
  ) {}

  // Fastify routes treat ':' as a parameter; '::' is a literal colon.
  @Post('jobs::dry-run')
  @HttpCode(200)
  @Roles('tenant')
  @ApiDoc({
    summary: 'Whether and where a job would be placed now (and what it would preempt), without submitting it. Takes exactly the body of POST /v1/jobs, with its limits; dependencies are not resolved.',
    body: submitJobRequest,
    response: dryRunResponse,
    errors: { 400: 'malformed field', 422: 'invalid combination, too many sub-tasks, or no node could ever run it' },
    tags: ['scheduler'],
  })
  dryRun(@CurrentPrincipal() principal: Principal, @Body() body: unknown) {
    // The submission's schema here, its checks and task division in dryRunJob: a dry-run refuses exactly what a submission refuses.
    return dryRunJob(this.scheduler.engine, principal.tenantId, parseInput(submitJobRequest, body), this.runtime.clock.now().getTime());
  }

  @Get('capacity-plan')
  @Roles('tenant', 'sre', 'finance')
  @ApiDoc({ summary: 'GPUs needed to deliver R GPU-hours in T hours at load L and efficiency η: ceil(R / (T · L · η)), and what is free now per model', query: capacityPlanQuery, response: capacityPlanResponse, errors: { 422: 'invalid input' }, tags: ['scheduler'] })
  capacityPlan(@Query() query: unknown) {
    const input = parseInput(capacityPlanQuery, query, 'query');
    try {
      const plan = capacityPlan(input);
      const free = freeByModel(this.scheduler.engine.state);
      const freeGpus = Object.values(free).reduce((n, m) => n + m.freeGpus, 0);
      return { ...plan, inputs: input, freeNow: free, freeGpusNow: freeGpus, shortfallNow: Math.max(0, plan.gpusNeeded - freeGpus) };
    } catch (error) {
      if (error instanceof CapacityPlanError) throw unprocessable(error.message, error.field);
      throw error;
    }
  }

  @Get('nodes')
  @Roles('sre')
  @ApiDoc({ summary: 'The fleet as the scheduler sees it: nodes, models, free GPUs, status', response: nodesResponse, tags: ['scheduler'] })
  nodes() {
    const state = this.scheduler.engine.state;
    return {
      nodes: state.nodeList.map((n) => ({ nodeId: n.nodeId, gpuModel: n.gpuModel, gpuCount: n.gpuCount, freeGpus: n.freeGpus, status: n.status, labels: n.labels, allocations: n.allocations.size })),
      fragmentation: fragmentation(state),
    };
  }

  @Post('nodes/:nodeId/drain')
  @HttpCode(202)
  @Roles('sre')
  @ApiDoc({ summary: 'Drain a node: no new placements; running work continues', response: drainResponse, errors: { 404: 'unknown node' }, tags: ['scheduler'] })
  async drain(@Param('nodeId') nodeId: string, @Body() body: unknown) {
    const { reason } = parseInput(drainRequest, body ?? {});
    return this.setDrain(nodeId, true, reason);
  }

  @Post('nodes/:nodeId/undrain')
  @HttpCode(202)
  @Roles('sre')
  @ApiDoc({ summary: 'Undrain a node: it takes new placements again', response: drainResponse, errors: { 404: 'unknown node' }, tags: ['scheduler'] })
  async undrain(@Param('nodeId') nodeId: string) {
    return this.setDrain(nodeId, false);
  }

  @Get('scheduling-policy')
  @Roles('sre', 'finance')
  @ApiDoc({ summary: 'The scheduling policy in force (tenant weights, per-model quotas, borrowing): from the log, or the configured one until the log sets one', response: policyResponse, tags: ['scheduler'] })
  policy() {
    const recorded = this.scheduler.engine.state.policy;
    return { policy: this.scheduler.engine.policy, source: recorded ? 'log' : 'config', sequence: recorded?.sequence ?? null, setAt: recorded?.setAt ?? null, actor: recorded?.actor ?? null };
  }

  @Put('scheduling-policy')
  @Roles('sre')
  @ApiDoc({
    summary: 'Replace the scheduling policy: recorded as a SchedulingPolicySet event (with actor and reason) that every later decision uses',
    body: setPolicyRequest,
    response: policyResponse,
    errors: { 400: 'malformed policy', 422: 'a value out of range (with its field)', 409: 'the policy kept changing under concurrent writers: read it again and retry' },
    tags: ['scheduler'],
  })
  async setPolicy(@CurrentPrincipal() principal: Principal, @Body() body: unknown) {
    const { policy, reason } = parseInput(setPolicyRequest, body);
    const { sequence } = await this.scheduler.engine.policyCommands.set(policy, principal.keyId, reason);
    await this.scheduler.engine.waitForSequence(sequence, 3000);
    return this.policy();
  }

  @Get('scheduler/status')
  @Roles('sre')
  @ApiDoc({ summary: 'This scheduler instance: leader or standby, log position, cycle figures', response: schedulerStatusResponse, tags: ['scheduler'] })
  status() {
    return this.scheduler.engine.status();
  }

  private async setDrain(nodeId: string, drain: boolean, reason = ''): Promise<{ nodeId: string; status: string; sequence: number }> {
    // The fleet as folded knows which nodes exist (a node registers on its agent subject).
    const node = this.scheduler.engine.state.nodes.get(nodeId);
    if (!node) throw notFound(`node ${nodeId}`);
    if (node.status === 'lost') throw new ApiError(409, 'conflict', `node ${nodeId} is lost`);
    const { sequence } = await this.scheduler.engine.drains.setDrain(nodeId, drain ? { reason } : undefined);
    await this.scheduler.engine.waitForSequence(sequence, 3000);
    return { nodeId, status: this.scheduler.engine.state.nodes.get(nodeId)?.status ?? 'unknown', sequence };
  }
}
