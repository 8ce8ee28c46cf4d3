import { z } from 'zod';
import { singleLineText } from '@fastgpu/contracts';
import { WEBHOOK_EVENT_TYPES } from './webhook-events';

/** Request shapes of the webhook routes, validated at the edge (400 malformed, 422 unacceptable). */
const id = z.string().min(1).max(128).regex(/^[A-Za-z0-9_-]+$/);
/** Bound on a receiver URL's length. */
export const WEBHOOK_URL_LENGTH_MAX = 2000;

export const registerEndpointRequest = z
  .object({
    url: z
      .url({ protocol: /^https?$/, error: 'must be an http or https URL' })
      .max(WEBHOOK_URL_LENGTH_MAX),
    /** Omitted or null: every tenant's events (a global endpoint). */
    tenantId: id.nullable().optional(),
    /** The webhook types to receive; omitted: all (`*`). */
    events: z.array(z.enum([...WEBHOOK_EVENT_TYPES, '*'])).min(1).max(WEBHOOK_EVENT_TYPES.length + 1).optional(),
    description: singleLineText(200).optional(),
  })
  .strict();

export const deliveriesQuery = z.object({
  endpointId: id.optional(),
  status: z.enum(['pending', 'succeeded', 'failed']).optional(),
  eventType: z.enum(WEBHOOK_EVENT_TYPES).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});
