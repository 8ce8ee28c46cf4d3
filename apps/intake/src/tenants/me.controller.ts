import { Controller, Get, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { ApiKeyGuard, CurrentPrincipal, Roles, type Principal } from '@fastgpu/auth';
import { roleSchema } from '@fastgpu/contracts';
import { ApiDoc } from '@fastgpu/http';

export const meResponse = z.object({
  keyId: z.string(),
  role: roleSchema,
  /** null for platform roles (finance, sre, admin), which act across tenants. */
  tenantId: z.string().nullable(),
});

/**
 * Who the caller's key is: its role and tenant, so a client (the console) shows what the key may
 * see without probing routes. Nothing secret: the key's own id, role and tenant.
 */
@Controller('v1/me')
@UseGuards(ApiKeyGuard)
@Roles('tenant', 'finance', 'sre')
export class MeController {
  @Get()
  @ApiDoc({ summary: "The caller's key: its id, role and tenant (null for platform roles)", response: meResponse, tags: ['tenants'] })
  me(@CurrentPrincipal() principal: Principal): z.infer<typeof meResponse> {
    return { keyId: principal.keyId, role: principal.role, tenantId: principal.tenantId };
  }
}
