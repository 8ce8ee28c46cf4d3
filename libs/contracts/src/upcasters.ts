import type { EventType } from './events';

/**
 * Upcasters turn an old event shape into the next version's, so deciders and projections only
 * see the latest. Published versions are never edited: a breaking change to `X` adds version
 * N+1 in the catalogue and `upcasters.X[N]` here, mapping vN data to vN+1.
 */
type Upcaster = (data: unknown) => unknown;
const upcasters: Partial<Record<EventType, Record<number, Upcaster>>> = {};

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
