import type { EventType } from './events';

/**
 * Upcasters turn an old event shape into the next version's, so deciders and projections only
 * see the latest. Published versions are never edited: a breaking change to `X` adds version
 * N+1 in the catalogue and `upcasters.X[N]` here, mapping vN data to vN+1.
 */
type Upcaster = (data: unknown) => unknown;
const upcasters: Partial<Record<EventType, Record<number, Upcaster>>> = {
  JobSubmitted: {
    /**
     * v1 → v2 (v2 adds `workload`): a v1 job has no workload. A v1 reader ignored any `workload`
     * key a v1 event might carry, so it is dropped here too: a replay sees what was applied then.
     */
    1: (data) => {
      if (typeof data !== 'object' || data === null || !('workload' in data)) return data;
      const { workload: _ignored, ...rest } = data as Record<string, unknown>;
      return rest;
    },
  },
};

export function upcast(type: EventType, fromVersion: number, data: unknown): { ok: true; data: unknown } | { ok: false; reason: string } {
  let current = data;
  const chain = upcasters[type] ?? {};
  const maxSteps = 32;
  let version = fromVersion;
  for (let step = 0; step < maxSteps; step++) {
    const next = chain[version];
    if (!next) return { ok: true, data: current };
    current = next(current);
    version++;
  }
  return { ok: false, reason: `${type}: upcast chain longer than ${maxSteps}` };
}

/**
 * A fix-up rule: an operator's repair of one known-bad event in the log, applied whenever the
 * event is read (before upcasting and validation), because the log itself is never edited. It is
 * the way out for a projection stalled at an event it cannot apply (docs/operations.md, "Runbook:
 * a projection stalled at an event"): the repaired event is what every projection, replay and
 * rebuild sees from then on, so live and rebuilt rows still agree.
 *
 * A fix-up names exactly one event (its id and type) and says why; it repairs the stored shape
 * (the whole envelope as parsed JSON, so it can mend `data` or an envelope attribute) and must
 * be a pure function of it.
 */
export interface EventFixUp {
  /** The event's `id` (also its `Nats-Msg-Id`). */
  eventId: string;
  /** The event's `type`: a fix-up never applies to a message of another type with that id. */
  type: EventType;
  /** Why the event is repaired and by whom (ticket, incident): shown in logs and reviews. */
  reason: string;
  /** The repaired envelope, given the stored one as parsed JSON (a fresh object per read). */
  repair(envelope: Record<string, unknown>): Record<string, unknown>;
}

/**
 * The fix-ups in force, reviewed like code. Each entry mends one event; remove none once
 * deployed (a rebuild reads the same bad event again).
 */
const eventFixUps: readonly EventFixUp[] = [];

const fixUpsById = new Map<string, EventFixUp>(eventFixUps.map((fixUp) => [fixUp.eventId, fixUp]));

/**
 * Adds a fix-up to the ones in force (for fix-ups a deployment loads at start, and for tests).
 * Registering the same event id twice is refused: one event, one repair.
 */
export function registerEventFixUp(fixUp: EventFixUp): void {
  if (fixUpsById.has(fixUp.eventId)) throw new Error(`a fix-up for event ${fixUp.eventId} is already in force`);
  fixUpsById.set(fixUp.eventId, fixUp);
}

/** Withdraws a fix-up registered with `registerEventFixUp` (tests). */
export function withdrawEventFixUp(eventId: string): void {
  fixUpsById.delete(eventId);
}

/**
 * The parsed body with its fix-up applied, or the body itself when none is in force for it.
 * Cheap on the hot path: one size check while no fix-up exists.
 */
export function applyEventFixUp(raw: unknown): unknown {
  if (fixUpsById.size === 0 || typeof raw !== 'object' || raw === null) return raw;
  const { id, type } = raw as { id?: unknown; type?: unknown };
  if (typeof id !== 'string') return raw;
  const fixUp = fixUpsById.get(id);
  if (!fixUp || fixUp.type !== type) return raw;
  return fixUp.repair(raw as Record<string, unknown>);
}
