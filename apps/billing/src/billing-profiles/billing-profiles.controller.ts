import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Put, UseGuards } from '@nestjs/common';
import { ApiKeyGuard, CurrentPrincipal, Roles, type Principal } from '@fastgpu/auth';
import { ApiDoc, parseInput } from '@fastgpu/http';
import { answer } from '../invoices/invoices.controller';
import { TenantSettingsService } from '../finance-actions/tenant-settings.service';
import { billingProfileParams, billingProfileRequest, billingProfileResponse } from './billing-profiles.schema';

/**
 * Billing profiles: the buyer (legal name, postal address, country, tax id) that a tenant's
 * invoices and credit notes name. Finance sets one as an event (`TenantBillingProfileSet`); each
 * invoice holds the profile in force at its cutoff, so a finalized invoice never changes when the
 * profile does. A tenant reads its own; another tenant's answers like a missing one.
 */
@Controller('v1/billing/tenants')
@UseGuards(ApiKeyGuard)
export class BillingProfilesController {
  constructor(@Inject(TenantSettingsService) private readonly settings: TenantSettingsService) {}

  @Put(':tenantId/profile')
  @HttpCode(200)
  @Roles('finance')
  @ApiDoc({
    summary: "Set a tenant's billing profile (TenantBillingProfileSet): the buyer its invoices name from their next cutoff on; finalized invoices keep theirs",
    body: billingProfileRequest,
    response: billingProfileResponse,
    headers: { 'idempotency-key': 'The same key with the same request answers the profile recorded; with another request, 409 idempotency_key_reused' },
    errors: { 404: 'no such tenant', 409: 'an Idempotency-Key used for another request', 422: 'unknown country code' },
    tags: ['billing'],
  })
  async set(@CurrentPrincipal() principal: Principal, @Param('tenantId') tenantId: string, @Body() body: unknown, @Headers('idempotency-key') key: string | undefined) {
    const params = parseInput(billingProfileParams, { tenantId }, 'params');
    const b = parseInput(billingProfileRequest, body);
    return answer(() => this.settings.setBillingProfile({ ...b, tenantId: params.tenantId, actor: principal.keyId, actionId: key }));
  }

  @Get(':tenantId/profile')
  @Roles('tenant', 'finance')
  @ApiDoc({ summary: "A tenant's billing profile in force now (a tenant reads its own)", response: billingProfileResponse, errors: { 404: 'no profile set, or another tenant' }, tags: ['billing'] })
  async get(@CurrentPrincipal() principal: Principal, @Param('tenantId') tenantId: string) {
    const params = parseInput(billingProfileParams, { tenantId }, 'params');
    return answer(() => this.settings.billingProfile(params.tenantId, principal.tenantId));
  }
}
