import { Body, Controller, Delete, HttpCode, Inject, Param, Post, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { idSchema } from '@fastgpu/contracts';
import { ApiKeyGuard, ApiKeyResolver, CurrentPrincipal, Roles, type Principal } from '@fastgpu/auth';
import { ApiDoc, parseInput } from '@fastgpu/http';
import { createTenantRequest, issueKeyRequest, issuedKeyResponse, tenantResponse } from './tenants.schema';
import { TenantsService } from './tenants.service';

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
  @ApiDoc({ summary: 'Create a tenant (admin)', body: createTenantRequest, response: tenantResponse, errors: { 409: 'tenant id taken', 422: 'unknown time zone or currency' }, tags: ['tenants'] })
  async create(@CurrentPrincipal() principal: Principal, @Body() body: unknown) {
    return this.tenants.create(principal, parseInput(createTenantRequest, body));
  }

  @Post('tenants/:tenantId/api-keys')
  @HttpCode(201)
  @ApiDoc({ summary: "Issue an API key for a tenant (admin); the secret is returned once", body: issueKeyRequest, response: issuedKeyResponse, tags: ['tenants'] })
  async issueTenantKey(@CurrentPrincipal() principal: Principal, @Param('tenantId') tenantId: string, @Body() body: unknown) {
    const id = parseInput(z.object({ tenantId: idSchema }), { tenantId }, 'params').tenantId;
    const request = parseInput(issueKeyRequest, body);
    return this.tenants.issueKey(principal, id, request.role, request.label);
  }

  @Post('api-keys')
  @HttpCode(201)
  @ApiDoc({ summary: 'Issue a platform API key (finance, sre, admin)', body: issueKeyRequest, response: issuedKeyResponse, tags: ['tenants'] })
  async issuePlatformKey(@CurrentPrincipal() principal: Principal, @Body() body: unknown) {
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
