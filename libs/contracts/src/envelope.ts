import { z } from 'zod';

/**
 * The envelope every FastGPU event travels in: CloudEvents 1.0 attributes (structured JSON
 * mode) plus tenant, trace context, correlation and causation ids and a schema version.
 * `id` is the `Nats-Msg-Id` on the bus.
 */
export const envelopeSchema = z.object({
  specversion: z.literal('1.0'),
  id: z.string().min(1).max(128),
  source: z.string().min(1).max(256),
  type: z.string().min(1).max(128),
  subject: z.string().min(1).max(256),
  time: z.iso.datetime({ offset: false }),
  datacontenttype: z.literal('application/json').default('application/json'),
  tenantid: z.string().max(128).nullable(),
  traceparent: z.string().max(128).optional(),
  correlationid: z.string().max(128),
  causationid: z.string().max(128).optional(),
  schemaversion: z.number().int().positive(),
  data: z.unknown(),
});

export type EnvelopeBase = z.infer<typeof envelopeSchema>;

export interface Envelope<TType extends string = string, TData = unknown> extends Omit<EnvelopeBase, 'type' | 'data'> {
  type: TType;
  data: TData;
}

/** Headers FastGPU sets on every message; the event type travels in the envelope and here. */
export const Headers = {
  messageId: 'Nats-Msg-Id',
  eventType: 'Ce-Type',
  schemaVersion: 'Ce-Schemaversion',
  tenantId: 'Ce-Tenantid',
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  deadLetterReason: 'Fastgpu-Dead-Letter-Reason',
  deadLetterSubject: 'Fastgpu-Original-Subject',
  deadLetterStream: 'Fastgpu-Original-Stream',
  deadLetterSequence: 'Fastgpu-Original-Sequence',
  deadLetterConsumer: 'Fastgpu-Consumer',
  deadLetterDeliveries: 'Fastgpu-Delivery-Count',
  deadLetterCount: 'Fastgpu-Dead-Letter-Count',
} as const;
