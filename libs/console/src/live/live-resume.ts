/**
 * How far back a live feed may resume. A client that comes back after a long sleep (a laptop lid,
 * a tab in the background) with an old Last-Event-ID would otherwise make the server replay the
 * whole log since then, event by event, to one socket. Past either bound the feed instead starts
 * now and its first message is a `reload` event: the client refetches what its views show, and
 * its Last-Event-ID moves to the reload's id.
 */

/** Events a resumed feed may replay at most. */
export const LIVE_RESUME_EVENTS_MAX = 10_000;
/** Oldest first missed event a resumed feed replays (by the stream's receipt time). */
export const LIVE_RESUME_AGE_MS_MAX = 10 * 60_000;

export interface ResumeBounds {
  eventsMax: number;
  ageMsMax: number;
}

export const LIVE_RESUME_BOUNDS: ResumeBounds = { eventsMax: LIVE_RESUME_EVENTS_MAX, ageMsMax: LIVE_RESUME_AGE_MS_MAX };

/** Why a feed starts now instead of resuming: `too-many` events missed, the first missed one `too-old`, or no longer in the stream (`expired`). */
export type ReloadReason = 'too-many' | 'too-old' | 'expired';

export type ResumeVerdict = { kind: 'resume'; fromSequence: number } | { kind: 'reload'; fromSequence: number; reason: ReloadReason; missed: number };

export interface StreamPosition {
  /** The stream's first and last sequence now (first > last when empty). */
  firstSequence: number;
  lastSequence: number;
}

/**
 * Where a feed resumed after `afterSequence` starts. `firstMissedAtMs`: the receipt time of the
 * event just after it (undefined: not known, e.g. nothing was missed). Pure.
 */
export function resumeVerdict(afterSequence: number, stream: StreamPosition, firstMissedAtMs: number | undefined, nowMs: number, bounds: ResumeBounds = LIVE_RESUME_BOUNDS): ResumeVerdict {
  const missed = Math.max(0, stream.lastSequence - afterSequence);
  const reload = (reason: ReloadReason): ResumeVerdict => ({ kind: 'reload', fromSequence: stream.lastSequence + 1, reason, missed });
  if (missed === 0) return { kind: 'resume', fromSequence: afterSequence + 1 };
  if (missed > bounds.eventsMax) return reload('too-many');
  if (afterSequence + 1 < stream.firstSequence) return reload('expired');
  if (firstMissedAtMs !== undefined && nowMs - firstMissedAtMs > bounds.ageMsMax) return reload('too-old');
  return { kind: 'resume', fromSequence: afterSequence + 1 };
}

const REASONS: Record<ReloadReason, (bounds: ResumeBounds) => string> = {
  'too-many': (bounds) => `more than ${bounds.eventsMax} events happened since Last-Event-ID`,
  'too-old': (bounds) => `the first event after Last-Event-ID is more than ${Math.round(bounds.ageMsMax / 60_000)} minutes old`,
  expired: () => 'the events after Last-Event-ID are no longer kept',
};

/**
 * The SSE message that tells a client to reload: `id` the stream's last sequence (its new
 * Last-Event-ID: the feed goes on after it), `event: reload`, `data` why and how many events it
 * did not replay.
 */
export function reloadEventText(verdict: Extract<ResumeVerdict, { kind: 'reload' }>, bounds: ResumeBounds = LIVE_RESUME_BOUNDS): string {
  const resumeAfter = verdict.fromSequence - 1;
  const data = { reason: verdict.reason, message: `${REASONS[verdict.reason](bounds)}: reload what you show; the feed goes on live from here`, missed: verdict.missed, resumeAfter };
  return `id: ${resumeAfter}\nevent: reload\ndata: ${JSON.stringify(data)}\n\n`;
}
