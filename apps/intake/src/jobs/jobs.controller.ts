import { Body, Controller, Delete, Get, Headers, HttpCode, Inject, Param, Post, Query, Res, UseGuards } from '@nestjs/common';
import { ApiKeyGuard, CurrentPrincipal, Roles, type Principal } from '@fastgpu/auth';
import { ApiDoc, parseInput } from '@fastgpu/http';
import { jobsPage, jobView, listJobsQuery, submitJobRequest } from './jobs.schema';
import { JobsService } from './jobs.service';

/** The job API: submit (an Idempotency-Key on every submission), read, list, cancel. */
@Controller('v1/jobs')
@UseGuards(ApiKeyGuard)
@Roles('tenant', 'sre', 'finance')
export class JobsController {
  constructor(@Inject(JobsService) private readonly jobs: JobsService) {}

  @Post()
  @Roles('tenant')
  @ApiDoc({
    summary:
      'Submit a job: divided into sub-tasks and queued. The Idempotency-Key header is required: a retry with the same key and body returns the same job. With a `workload`, each sub-task runs its command on a node agent (docs/node-agent.md): argv (a shell only with shell: true), env, secrets by name, working directory, timeout, inputs (one per sub-task, or inputsPerSubtask per sub-task as a JSON array), result file, and the aggregation rule (concat, jsonl, none) applied when every sub-task succeeded.',
    body: submitJobRequest,
    response: jobView,
    success: { 202: 'accepted: a new job, queued', 200: 'a retry with the same Idempotency-Key: the job as it is now' },
    errors: {
      400: 'malformed field (control characters in text included), or a missing or malformed Idempotency-Key',
      409: 'Idempotency-Key reused with another body (code idempotency_key_reused)',
      422: 'job no node could run, an unknown dependency (another tenant\'s job id is unknown too), too many sub-tasks, invalid combination (inputs with a count or GPU-hours that disagree), a sub-task input too large, or a container image (no node runs containers yet)',
    },
    tags: ['jobs'],
  })
  async submit(
    @CurrentPrincipal() principal: Principal,
    @Body() body: unknown,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: { status(code: number): unknown },
  ) {
    const { job, created } = await this.jobs.submit(principal, parseInput(submitJobRequest, body), idempotencyKey);
    reply.status(created ? 202 : 200);
    return job;
  }

  @Get()
  @ApiDoc({
    summary: "List the caller's jobs (platform roles: any tenant with ?tenantId=), newest first, in pages: give nextCursor as cursor for the next; filter by state, projectId and submission time [from, to)",
    query: listJobsQuery,
    response: jobsPage,
    errors: { 400: 'malformed parameter, or a cursor that is not one of this list', 422: 'to not after from' },
    tags: ['jobs'],
  })
  async list(@CurrentPrincipal() principal: Principal, @Query() query: unknown) {
    return this.jobs.list(principal, parseInput(listJobsQuery, query, 'query'));
  }

  @Get(':jobId')
  @ApiDoc({ summary: 'A job, its sub-tasks and, while it waits, why (from the scheduler)', response: jobView, errors: { 404: 'no such job for this tenant' }, tags: ['jobs'] })
  async get(@CurrentPrincipal() principal: Principal, @Param('jobId') jobId: string) {
    return this.jobs.get(principal, jobId);
  }

  @Delete(':jobId')
  @HttpCode(202)
  @Roles('tenant')
  @ApiDoc({ summary: 'Cancel a job: pending sub-tasks are removed, running ones stopped', response: jobView, errors: { 404: 'no such job', 409: 'job already ended' }, tags: ['jobs'] })
  async cancel(@CurrentPrincipal() principal: Principal, @Param('jobId') jobId: string) {
    return this.jobs.cancel(principal, jobId, 'cancelled by tenant');
  }
}
