import { Body, Controller, Delete, Headers, HttpCode, Inject, Param, Post, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { requestIdSchema } from '@fastgpu/contracts';
import { ApiKeyGuard, ApiKeyResolver, CurrentPrincipal, Roles, type Principal } from '@fastgpu/auth';
import { ApiDoc, ApiError, parseInput } from '@fastgpu/http';
import { IDEMPOTENCY_HEADER } from '../shared/idempotency';
import { createTenantRequest, issueKeyRequest, issuedKeyResponse, tenantResponse } from './tenants.schema';
import { TenantsService } from './tenants.service';

/**
 * Key issuance takes no Idempotency-Key: its answer holds the secret, which is shown once and
 * never stored, so a retry could not be answered with the original. Refusing the header tells a
 * client that relies on it instead of silently issuing a second key.
 */
function refuseIdempotencyKey(value: string | undefined): void {
  if (value !== undefined) throw new ApiError(400, 'invalid_request', `${IDEMPOTENCY_HEADER} is not accepted when issuing a key: the secret is shown once and never stored, so a retry cannot repeat the answer (revoke a key whose answer was lost)`, IDEMPOTENCY_HEADER);
}

/** Admin API: tenants and their API keys (secrets are shown once). */
@Controller('v1')
@UseGuards(ApiKeyGuard)
@Roles('admin')
export class TenantsController {
  constructor(
    @Inject(TenantsService) private readonly tenants: TenantsService,
    @Inject(ApiKeyResolver) private readonly keys: ApiKeyResolver,
  ) {}

  @Post('tenants')
  @HttpCode(201)
  @ApiDoc({
    summary: 'Create a tenant (admin). With an Idempotency-Key, a retry with the same body answers the tenant the first request created.',
    body: createTenantRequest,
    response: tenantResponse,
    errors: { 400: 'malformed field or Idempotency-Key', 409: 'tenant id taken, or Idempotency-Key reused with another body (code idempotency_key_reused)', 422: 'unknown time zone or currency' },
    tags: ['tenants'],
  })
  async create(@CurrentPrincipal() principal: Principal, @Body() body: unknown, @Headers('idempotency-key') idempotencyKey: string | undefined) {
    return this.tenants.create(principal, parseInput(createTenantRequest, body), idempotencyKey);
  }

  @Post('tenants/:tenantId/api-keys')
  @HttpCode(201)
  @ApiDoc({ summary: "Issue an API key for a tenant (admin); the secret is returned once", body: issueKeyRequest, response: issuedKeyResponse, errors: { 400: 'malformed field, or an Idempotency-Key (not accepted here)' }, tags: ['tenants'] })
  async issueTenantKey(@CurrentPrincipal() principal: Principal, @Param('tenantId') tenantId: string, @Body() body: unknown, @Headers('idempotency-key') idempotencyKey: string | undefined) {
    refuseIdempotencyKey(idempotencyKey);
    const id = parseInput(z.object({ tenantId: requestIdSchema }), { tenantId }, 'params').tenantId;
    const request = parseInput(issueKeyRequest, body);
    return this.tenants.issueKey(principal, id, request.role, request.label);
  }

  @Post('api-keys')
  @HttpCode(201)
  @ApiDoc({ summary: 'Issue a platform API key (finance, sre, admin)', body: issueKeyRequest, response: issuedKeyResponse, errors: { 400: 'malformed field, or an Idempotency-Key (not accepted here)' }, tags: ['tenants'] })
  async issuePlatformKey(@CurrentPrincipal() principal: Principal, @Body() body: unknown, @Headers('idempotency-key') idempotencyKey: string | undefined) {
    refuseIdempotencyKey(idempotencyKey);
    const request = parseInput(issueKeyRequest, body);
    return this.tenants.issueKey(principal, null, request.role, request.label);
  }

  @Delete('api-keys/:keyId')
  @HttpCode(204)
  @ApiDoc({ summary: 'Revoke an API key (admin)', tags: ['tenants'] })
  async revoke(@CurrentPrincipal() principal: Principal, @Param('keyId') keyId: string): Promise<void> {
    await this.tenants.revokeKey(principal, keyId, 'revoked by admin');
    this.keys.forget();
  }
}
