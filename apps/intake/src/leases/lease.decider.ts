import { deriveId, type DomainEvent, type EventData } from '@fastgpu/contracts';
import { notFoundError, validationError, type BuildEvent, type Decider } from '@fastgpu/eventsourcing';
import type { RequestLeaseBody } from './leases.schema';

/**
 * A lease as intake decides on it (one aggregate per lease, the subject `…intake.lease.<id>`):
 * requested once, asked to be released once. The grant and the release themselves are the
 * scheduler's (on its node subjects); the routes read them from the `leases` projection.
 * Pure: ids and times arrive in the command, events are built by the given `build`.
 */
export interface LeaseState {
  /** The tenant whose request created the lease; null before LeaseRequested. */
  tenantId: string | null;
  /** What LeaseRequested recorded: a retried request answers from it while the read model lags. */
  requested: EventData<'LeaseRequested'> | null;
  releaseRequested: boolean;
}

export type LeaseCommand =
  | { kind: 'request'; leaseId: string; tenantId: string; body: RequestLeaseBody; requestedAt: string }
  | { kind: 'release'; leaseId: string; tenantId: string; requestedAt: string };

/**
 * What refuses a lease request whatever the aggregate holds; checked before an Idempotency-Key is
 * claimed, so a refused request leaves its key free.
 */
export function leaseRequestRefusal(body: RequestLeaseBody) {
  if (body.priorityClass === 'preemptible' && body.capacityType && body.capacityType !== 'preemptible') return validationError('unprocessable', 'a preemptible lease is billed as preemptible capacity', 'capacityType');
  return undefined;
}

const leaseNotFound = (leaseId: string) => notFoundError('lease_not_found', `lease ${leaseId} not found`, 'leaseId');

export function leaseDecider(build: BuildEvent): Decider<LeaseState, LeaseCommand, DomainEvent> {
  return {
    initialState: () => ({ tenantId: null, requested: null, releaseRequested: false }),
    decide(command, state) {
      switch (command.kind) {
        case 'request': {
          const refusal = leaseRequestRefusal(command.body);
          if (refusal) throw refusal;
          // Requested already (a retry with the same Idempotency-Key: the id derives from it): nothing new.
          if (state.tenantId !== null) return [];
          const { body } = command;
          const data: EventData<'LeaseRequested'> = {
            leaseId: command.leaseId,
            tenantId: command.tenantId,
            projectId: body.projectId,
            gpuModels: body.gpuModels,
            gpus: body.gpus,
            capacityType: body.capacityType ?? (body.priorityClass === 'preemptible' ? 'preemptible' : 'on-demand'),
            priorityClass: body.priorityClass,
            requestedAt: command.requestedAt,
          };
          return [build('LeaseRequested', data, { id: deriveId(command.leaseId, 'LeaseRequested'), time: command.requestedAt, tenantId: command.tenantId, correlationId: command.leaseId })];
        }
        case 'release': {
          // Another tenant's lease is a missing one.
          if (state.tenantId === null || state.tenantId !== command.tenantId) throw leaseNotFound(command.leaseId);
          if (state.releaseRequested) return [];
          return [
            build(
              'LeaseReleaseRequested',
              { leaseId: command.leaseId, tenantId: command.tenantId, requestedAt: command.requestedAt },
              { id: deriveId(command.leaseId, 'LeaseReleaseRequested'), time: command.requestedAt, tenantId: command.tenantId, correlationId: command.leaseId },
            ),
          ];
        }
        default: {
          const unreachable: never = command;
          throw new Error(`unknown lease command ${JSON.stringify(unreachable)}`);
        }
      }
    },
    evolve(state, event) {
      switch (event.type) {
        case 'LeaseRequested':
          return { ...state, tenantId: event.data.tenantId, requested: event.data };
        case 'LeaseReleaseRequested':
          return { ...state, releaseRequested: true };
        default:
          return state;
      }
    },
  };
}
