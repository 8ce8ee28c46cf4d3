import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Query, UseGuards } from '@nestjs/common';
import { ApiKeyGuard, CurrentPrincipal, Roles, type Principal } from '@fastgpu/auth';
import { ApiDoc, parseInput } from '@fastgpu/http';
import { ApiWebhooks } from '@fastgpu/openapi';
import { answer } from '../invoices/invoices.controller';
import { WEBHOOK_EVENT_TYPES } from './webhook-events';
import { z } from 'zod';
import { billingWebhooks, deliveriesQuery, eventTypesResponse, registerEndpointRequest, WEBHOOK_EVENT_DESCRIPTIONS, WEBHOOK_HEADERS, webhookBodySchemas } from './webhooks.schema';
import { WebhooksService } from './webhooks.service';
import { attemptOutcomeResponse, deliveriesResponse, deliveryResponse, endpointResponse, endpointsResponse, registeredEndpointResponse } from './webhooks.responses';

/**
 * Webhooks, for finance and admin: endpoints per tenant or global (signed per Standard Webhooks
 * with a secret shown once at registration), the delivery log, and redelivery by hand. The
 * webhooks themselves are declared in the OpenAPI document's top-level `webhooks`.
 */
@ApiWebhooks(billingWebhooks)
@Controller('v1/billing/webhooks')
@UseGuards(ApiKeyGuard)
@Roles('finance')
export class WebhooksController {
  constructor(@Inject(WebhooksService) private readonly webhooks: WebhooksService) {}

  @Get('event-types')
  @ApiDoc({ summary: 'The webhook types billing sends, each with the JSON Schema of its body { type, timestamp, data }, signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature)', response: eventTypesResponse, tags: ['billing'] })
  eventTypes() {
    return {
      eventTypes: WEBHOOK_EVENT_TYPES.map((type) => ({ type, description: WEBHOOK_EVENT_DESCRIPTIONS[type], bodySchema: z.toJSONSchema(webhookBodySchemas[type]) })),
      headers: Object.keys(WEBHOOK_HEADERS),
    };
  }

  @Post('endpoints')
  @HttpCode(201)
  @ApiDoc({ summary: 'Register a webhook endpoint (a tenant\'s or, without tenantId, global); the signing secret (whsec_…) is in this answer only', body: registerEndpointRequest, response: registeredEndpointResponse, errors: { 422: 'unknown tenant' }, tags: ['billing'] })
  async register(@CurrentPrincipal() principal: Principal, @Body() body: unknown) {
    const b = parseInput(registerEndpointRequest, body);
    return answer(() => this.webhooks.register({ url: b.url, tenantId: b.tenantId ?? null, events: b.events ?? ['*'], description: b.description ?? '' }, principal.keyId));
  }

  @Get('endpoints')
  @ApiDoc({ summary: 'Webhook endpoints (without their secrets)', response: endpointsResponse, tags: ['billing'] })
  async endpoints() {
    return { endpoints: await this.webhooks.endpoints() };
  }

  @Delete('endpoints/:endpointId')
  @ApiDoc({ summary: 'Disable a webhook endpoint: nothing more is sent to it; its delivery log stays', response: endpointResponse, errors: { 404: 'no such endpoint' }, tags: ['billing'] })
  async disable(@Param('endpointId') endpointId: string) {
    return answer(() => this.webhooks.disable(endpointId));
  }

  @Get('deliveries')
  @ApiDoc({ summary: 'The delivery log: one row per webhook message and endpoint, with its status and attempts', query: deliveriesQuery, response: deliveriesResponse, tags: ['billing'] })
  async deliveries(@Query() query: unknown) {
    const q = parseInput(deliveriesQuery, query, 'query');
    return { deliveries: await this.webhooks.deliveries(q) };
  }

  @Get('deliveries/:deliveryId')
  @ApiDoc({ summary: 'One delivery with its payload and every attempt (time, HTTP status, error, duration)', response: deliveryResponse, errors: { 404: 'no such delivery' }, tags: ['billing'] })
  async delivery(@Param('deliveryId') deliveryId: string) {
    return answer(() => this.webhooks.delivery(deliveryId));
  }

  @Post('deliveries/:deliveryId/redeliver')
  @HttpCode(200)
  @ApiDoc({ summary: 'Redeliver by hand: one attempt now, the same webhook-id, a fresh signature; answers its outcome', response: attemptOutcomeResponse, errors: { 404: 'no such delivery' }, tags: ['billing'] })
  async redeliver(@Param('deliveryId') deliveryId: string) {
    return answer(() => this.webhooks.redeliver(deliveryId));
  }
}
