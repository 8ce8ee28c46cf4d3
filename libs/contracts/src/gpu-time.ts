/**
 * The hour's length in milliseconds, written once: GPU-hours ↔ GPU-ms (job division, prices per
 * GPU-hour, credit-note quantities) and hour windows. It lives here, the lowest package, so that
 * `libs/contracts` can use it too; `libs/money`'s gpu-time.ts (the GPU-time rules) re-exports it.
 */
export const HOUR_MS = 3_600_000;
