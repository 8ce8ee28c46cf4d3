import type { StoredEvent } from '@fastgpu/contracts';
import { evolveFleet } from './fleet.evolve';
import { evolveJobs } from './jobs.evolve';
import { evolveLeases } from './leases.evolve';
import type { SchedulerEvent } from './placement.types';
import type { SchedulerState } from './scheduler.state';

/**
 * The scheduler's fold: one event into the state (its shapes and initial state are in
 * scheduler.state.ts). It applies each log position once, then hands the event to its
 * aggregate's evolve: the fleet, the jobs and their sub-tasks, the leases; the scheduling
 * policy is one field. Events the scheduler does not read only move the sequence.
 */
export function evolve(state: SchedulerState, stored: StoredEvent): SchedulerState {
  const { event, sequence } = stored;
  if (sequence <= state.lastSequence) return state;
  state.lastSequence = sequence;
  const e = event as SchedulerEvent;
  switch (e.type) {
    case 'NodeRegistered':
    case 'NodeLost':
    case 'NodeRecovered':
    case 'NodeDrained':
    case 'NodeUndrained':
      return evolveFleet(state, stored, e);
    case 'JobSubmitted':
    case 'SubtaskCreated':
    case 'JobCancelRequested':
    case 'SubtaskPlaced':
    case 'SubtaskStarted':
    case 'SubtaskCompleted':
    case 'SubtaskFailed':
    case 'SubtaskPreempted':
    case 'SubtaskRequeued':
    case 'SubtaskAbandoned':
    case 'JobCompleted':
      return evolveJobs(state, stored, e);
    case 'LeaseRequested':
    case 'LeaseReleaseRequested':
    case 'LeaseGranted':
    case 'LeaseReleased':
      return evolveLeases(state, stored, e);
    case 'SchedulingPolicySet':
      state.policy = { policy: e.data.policy, sequence, setAt: e.data.setAt, actor: e.data.actor };
      return state;
    default: {
      const unreachable: never = e;
      void unreachable;
      return state;
    }
  }
}
