import { Body, Controller, Headers, HttpCode, Inject, Post, Query, Res, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { ApiKeyGuard, CurrentPrincipal, Roles, tenantScope, type Principal } from '@fastgpu/auth';
import { ApiDoc, ApiError } from '@fastgpu/http';
import { publisherFor, RUNTIME, type Runtime } from '@fastgpu/runtime';
import { binaryModeEvent, isBinaryMode, MalformedHeaderError, type RequestHeaders } from './binary-mode';
import { EXTERNAL_EVENTS_PER_REQUEST_MAX, ExternalIngest, externalCloudEventSchema, LogUnavailableError } from './external.ingest';
import { ingestOutcomeResponse } from './external.responses';

/**
 * `POST /v1/events`: external usage as CloudEvents: one event in structured mode (the body is
 * the event) or binary mode (`ce-*` headers, the body is `data`), or a batch (a JSON array,
 * `application/cloudevents-batch+json`) of up to 1000. Per-event results (docs/metering.md);
 * 409 when any (source, id) was already received from the tenant with other content (then
 * nothing is applied).
 */
@Controller('v1/events')
@UseGuards(ApiKeyGuard)
@Roles('tenant')
export class ExternalEventsController {
  private readonly ingest: ExternalIngest;

  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {
    this.ingest = new ExternalIngest(runtime.db, publisherFor(runtime, 'metering'), runtime.bus.nc);
  }

  @Post()
  @HttpCode(200)
  @ApiDoc({
    summary: 'Report external GPU allocations (ExternalAllocationStarted / Stopped) as CloudEvents in structured, batch or binary mode; tenant from the API key',
    body: z.union([externalCloudEventSchema, z.array(externalCloudEventSchema).max(EXTERNAL_EVENTS_PER_REQUEST_MAX)]),
    response: ingestOutcomeResponse,
    // Per-event outcomes (docs/metering.md) are the body of 409 and 422 too; the Error shape remains possible.
    errorBodies: { 409: ingestOutcomeResponse, 422: ingestOutcomeResponse },
    errors: {
      400: 'body is not an event or an array of events, or a ce- header is malformed',
      409: 'a (source, id) was already received from this tenant with other content: the body is the per-event outcome (the conflicting events say `conflict`, the others `rejected: not applied`), not the Error shape; nothing was applied',
      413: 'too many events',
      422: 'no event could be accepted: the body is the per-event outcome (each event `rejected` with its field and reason); or a platform key named no tenantId: the Error shape',
      503: 'the event log did not store the events (nothing recorded)',
    },
    tags: ['usage'],
  })
  async post(
    @CurrentPrincipal() principal: Principal,
    @Body() body: unknown,
    @Headers() headers: RequestHeaders,
    @Query('tenantId') requestedTenant: string | undefined,
    @Res({ passthrough: true }) reply: { status(code: number): unknown },
  ) {
    const tenantId = tenantScope(principal, requestedTenant);
    if (!tenantId) throw new ApiError(422, 'unprocessable', 'tenantId: a platform key must name the tenant', 'tenantId');
    let events: unknown[];
    if (isBinaryMode(headers)) {
      try {
        events = [binaryModeEvent(headers, body)];
      } catch (error) {
        if (error instanceof MalformedHeaderError) throw new ApiError(400, 'invalid_request', error.message, error.header);
        throw error;
      }
    } else {
      const batch = Array.isArray(body);
      if (body === null || body === undefined || (typeof body !== 'object' && !batch)) throw new ApiError(400, 'invalid_request', 'body: a CloudEvent or an array of CloudEvents', 'body');
      events = batch ? body : [body];
    }
    if (events.length === 0) throw new ApiError(400, 'invalid_request', 'body: empty batch', 'body');
    if (events.length > EXTERNAL_EVENTS_PER_REQUEST_MAX) throw new ApiError(413, 'payload_too_large', `body: at most ${EXTERNAL_EVENTS_PER_REQUEST_MAX} events per request`, 'body');
    let outcome;
    try {
      outcome = await this.ingest.ingest(events, tenantId, this.runtime.clock.now());
    } catch (error) {
      // Receipts are rolled back with the failed publish: a retry of the whole request is safe.
      if (error instanceof LogUnavailableError) throw new ApiError(503, 'unavailable', 'events: the event log did not store them; nothing was recorded, retry the request', 'body');
      throw error;
    }
    if (outcome.conflicts) reply.status(409);
    else if (outcome.accepted + outcome.acceptedLate + outcome.duplicates === 0) reply.status(422);
    return outcome;
  }
}
