import { Body, Controller, Delete, Get, Headers, HttpCode, Inject, Param, Post, Query, Res, UseGuards } from '@nestjs/common';
import { ApiKeyGuard, CurrentPrincipal, Roles, type Principal } from '@fastgpu/auth';
import { ApiDoc, parseInput } from '@fastgpu/http';
import { leasesPage, leaseView, listLeasesQuery, requestLeaseBody, requestLeaseQuery } from './leases.schema';
import { LeasesService } from './leases.service';

/** Interactive GPU leases: ask for N GPUs of a model, hold them, release them. */
@Controller('v1/leases')
@UseGuards(ApiKeyGuard)
@Roles('tenant', 'sre', 'finance')
export class LeasesController {
  constructor(@Inject(LeasesService) private readonly leases: LeasesService) {}

  @Post()
  @Roles('tenant')
  @ApiDoc({
    summary: 'Ask for N GPUs of a model; granted when the scheduler places it (?waitMs= waits for the grant). Billed per GPU-ms from grant to release. A retry with the same Idempotency-Key and body answers the same lease.',
    body: requestLeaseBody,
    query: requestLeaseQuery,
    response: leaseView,
    success: { 201: 'granted (within waitMs): node and GPU indices included', 202: 'requested, not granted yet: poll GET /v1/leases/{id}' },
    errors: { 400: 'malformed field or Idempotency-Key', 409: 'Idempotency-Key reused with another body (code idempotency_key_reused)', 422: 'no node could ever hold it' },
    tags: ['leases'],
  })
  async request(@CurrentPrincipal() principal: Principal, @Body() body: unknown, @Query() query: unknown, @Headers('idempotency-key') idempotencyKey: string | undefined, @Res({ passthrough: true }) reply: { status(code: number): unknown }) {
    const { waitMs } = parseInput(requestLeaseQuery, query, 'query');
    const lease = await this.leases.request(principal, parseInput(requestLeaseBody, body), { idempotencyKey, waitMs });
    reply.status(lease.state === 'granted' ? 201 : 202);
    return lease;
  }

  @Get()
  @ApiDoc({
    summary: "List the caller's leases (platform roles: any tenant's with ?tenantId=, or all), newest first by request time, in pages: give nextCursor as cursor for the next; filter by state",
    query: listLeasesQuery,
    response: leasesPage,
    errors: { 400: 'malformed parameter, or a cursor that is not one of this list' },
    tags: ['leases'],
  })
  async list(@CurrentPrincipal() principal: Principal, @Query() query: unknown) {
    return this.leases.list(principal, parseInput(listLeasesQuery, query, 'query'));
  }

  @Get(':leaseId')
  @ApiDoc({ summary: 'A lease: state, node and GPU indices once granted, GPU-ms so far', response: leaseView, errors: { 404: 'no such lease for this tenant' }, tags: ['leases'] })
  async get(@CurrentPrincipal() principal: Principal, @Param('leaseId') leaseId: string) {
    return this.leases.get(principal, leaseId);
  }

  @Delete(':leaseId')
  @HttpCode(202)
  @Roles('tenant')
  @ApiDoc({ summary: 'Release a lease: its GPUs go back to the pool and billing stops at the release', response: leaseView, errors: { 404: 'no such lease for this tenant' }, tags: ['leases'] })
  async release(@CurrentPrincipal() principal: Principal, @Param('leaseId') leaseId: string) {
    return this.leases.release(principal, leaseId);
  }
}
