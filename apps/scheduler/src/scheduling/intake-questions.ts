import type { Subscription } from '@nats-io/transport-node';
import { explainRequest, feasibilityRequest, invalidServiceRequest, parseJson, SERVICE_REPLY_TEXT_LENGTH_MAX, type ExplainReply, type FeasibilityReply, type ServiceErrorReply } from '@fastgpu/contracts';
import type { Bus } from '@fastgpu/messaging';
import type { z } from 'zod';
import type { Explanation, FeasibilityRequest } from '../placement/questions';
import type { SchedulerState } from '../placement/scheduler.state';

/** What the replies ask of the engine. */
export interface IntakeQuestions {
  readonly caughtUp: boolean;
  readonly state: SchedulerState;
  feasibility(request: FeasibilityRequest): { feasible: boolean; reason?: string; field?: string };
  explain(jobId: string, tenantId: string): Explanation;
}

/** The request fields a negative feasibility verdict may name (the decider's own field names). */
const feasibilityFields = ['gpuModels', 'gpusPerSubtask', 'subtaskCount', 'gangTopologyKey'] as const;
const encoder = new TextEncoder();

/**
 * Core NATS request/reply for intake (queue group: one instance answers): whether any node could
 * ever run a job, and why a job waits. Requests and replies follow libs/contracts
 * service-requests.ts: a request that does not parse, or a handler that fails, gets a typed
 * error reply; nothing a requester sends can crash the engine or go unanswered. Returns the
 * subscriptions, for the engine to end at stop.
 */
export function serveIntakeQuestions(bus: Bus, engine: IntakeQuestions, onError: (error: Error) => void): Subscription[] {
  const { nc, topology } = bus;
  const reply =
    <S extends z.ZodType>(schema: S, handler: (request: z.infer<S>) => unknown) =>
    (error: Error | null, msg: { data: Uint8Array; respond(data: Uint8Array): boolean }) => {
      if (error) return;
      const answer = (): unknown => {
        const parsed = parseJson(msg.data);
        if (!parsed.ok) return { error: { code: 'invalid_request', message: 'request: not JSON' } } satisfies ServiceErrorReply;
        const request = schema.safeParse(parsed.value);
        if (!request.success) return invalidServiceRequest(request.error);
        try {
          return handler(request.data);
        } catch (e) {
          onError(e as Error);
          return { error: { code: 'internal', message: 'the scheduler could not answer' } } satisfies ServiceErrorReply;
        }
      };
      msg.respond(encoder.encode(JSON.stringify(answer())));
    };
  return [
    nc.subscribe(topology.subjects.service('scheduler', 'feasibility'), {
      queue: 'scheduler',
      callback: reply(feasibilityRequest, (request): FeasibilityReply => {
        // Until the fleet is folded, no verdict is better than a wrong rejection.
        if (!engine.caughtUp) return { feasible: true, note: 'scheduler is still reading the log' };
        const verdict = engine.feasibility(request);
        if (verdict.feasible) return { feasible: true };
        const field = feasibilityFields.find((f) => f === verdict.field) ?? 'gpuModels';
        return { feasible: false, field, reason: (verdict.reason ?? 'no node could ever run this job').slice(0, SERVICE_REPLY_TEXT_LENGTH_MAX) };
      }),
    }),
    nc.subscribe(topology.subjects.service('scheduler', 'explain'), {
      queue: 'scheduler',
      callback: reply(explainRequest, ({ jobId, tenantId }): ExplainReply => {
        // Only a live job of the asking tenant is explained; any other id (missing, ended, or
        // another tenant's) answers the same `unknown` after the same lookup, so the answer
        // never tells anything about another tenant's job.
        if (engine.state.jobs.get(jobId)?.tenantId !== tenantId) return { state: 'unknown' };
        const explained = engine.explain(jobId, tenantId);
        if (explained.state === 'completed' || explained.state === 'unknown') return { state: 'unknown' };
        return { ...explained, state: explained.state, ...(explained.waiting !== undefined ? { waiting: explained.waiting.slice(0, SERVICE_REPLY_TEXT_LENGTH_MAX) } : {}) };
      }),
    }),
  ];
}
