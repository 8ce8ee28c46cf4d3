import { instantMs } from '@fastgpu/money';
import type { CycleCommand, Decision, Reservation, Waiting } from './placement.types';
import type { ClassRank, NodeState, SchedulerState } from './scheduler.state';
import { Scratch } from './scratch-fleet';

/** Upper bound on placements in one cycle, unless the command names another (bounds batch size and cycle time). */
export const PLACEMENTS_PER_CYCLE_MAX = 1000;

/** What the cycle places at once: one sub-task of a job, or a lease. */
export interface Unit {
  key: string;
  tenantId: string;
  classRank: ClassRank;
  gpuModels: string[];
  gpus: number;
  runtimeMs: number;
}

export interface Placement {
  node: NodeState;
  indices: number[];
}

/**
 * One scheduling cycle in progress: the folded state it reads (never writes), its command, the
 * scratch fleet, and what it has decided so far. The rules that work on it live in their own
 * files: housekeeping.ts (requeues, abandons, completions, stops), placement.ts (best fit and
 * the job and lease attempts), preemption.ts, gangs.ts, backfill.ts (the reservation), and the
 * traversal in queue order in scheduler.decider.ts.
 *
 * `journal`, while set, collects undo steps, so a gang that does not fit whole is taken back.
 */
export class Cycle {
  readonly scratch: Scratch;
  readonly nowMs: number;
  readonly decisions: Decision[] = [];
  readonly waiting = new Map<string, Waiting>();
  placements = 0;
  preemptions = 0;
  /** The last lease epoch handed out: the next placement takes the next one (fencing tokens grow). */
  epoch: number;
  reservation?: Reservation & { extraByNode: Map<number, number>; label: string };
  journal?: Array<() => void>;
  readonly placementsMax: number;
  /** Smallest size, per model, class and tenant, for which reclaiming borrowed quota found no node. */
  readonly reclaimFailed = new Map<string, number>();
  reservationTried = false;
  readonly quotasInPolicy: boolean;
  lastQuotaReason?: string;

  constructor(
    readonly state: SchedulerState,
    readonly command: CycleCommand,
  ) {
    this.nowMs = instantMs(command.now);
    this.scratch = new Scratch(state);
    this.epoch = state.lastLeaseEpoch;
    this.placementsMax = command.placementsMax ?? PLACEMENTS_PER_CYCLE_MAX;
    this.quotasInPolicy = Object.values(command.policy.tenants).some((t) => Object.keys(t.quotas).length > 0);
  }

  get explaining(): boolean {
    return this.command.explain === true;
  }

  get full(): boolean {
    return this.placements >= this.placementsMax;
  }

  wait(key: string, waiting: Waiting): void {
    if (this.command.explain) this.waiting.set(key, waiting);
  }
}
