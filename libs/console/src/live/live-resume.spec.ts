/**
 * Proves the bound on resuming a live feed: within N events and T minutes it resumes just after
 * Last-Event-ID; more events missed, a first missed event too old, or one no longer in the stream
 * start the feed now with a `reload` message whose id is the stream's last sequence.
 */
import { describe, expect, it } from 'vitest';
import { reloadEventText, resumeVerdict } from './live-resume';

const bounds = { eventsMax: 100, ageMsMax: 60_000 };
const stream = { firstSequence: 1, lastSequence: 500 };
const now = Date.parse('2026-03-01T12:00:00.000Z');

describe('resumeVerdict', () => {
  it('resumes just after Last-Event-ID within both bounds', () => {
    expect(resumeVerdict(400, stream, now - 60_000, now, bounds)).toEqual({ kind: 'resume', fromSequence: 401 });
    expect(resumeVerdict(500, stream, undefined, now, bounds)).toEqual({ kind: 'resume', fromSequence: 501 });
  });

  it('starts now past the event bound, the age bound, or the stream start', () => {
    expect(resumeVerdict(399, stream, now, now, bounds)).toEqual({ kind: 'reload', fromSequence: 501, reason: 'too-many', missed: 101 });
    expect(resumeVerdict(450, stream, now - 60_001, now, bounds)).toEqual({ kind: 'reload', fromSequence: 501, reason: 'too-old', missed: 50 });
    expect(resumeVerdict(450, { firstSequence: 460, lastSequence: 500 }, undefined, now, bounds)).toEqual({ kind: 'reload', fromSequence: 501, reason: 'expired', missed: 50 });
  });
});

describe('reloadEventText', () => {
  it('is one SSE message: id the last sequence, event reload, data saying why', () => {
    const text = reloadEventText({ kind: 'reload', fromSequence: 501, reason: 'too-many', missed: 101 }, bounds);
    const [id, event, data, ...rest] = text.split('\n');
    expect(id).toBe('id: 500');
    expect(event).toBe('event: reload');
    expect(JSON.parse(data!.slice('data: '.length))).toMatchObject({ reason: 'too-many', missed: 101, resumeAfter: 500, message: expect.stringContaining('more than 100 events') });
    expect(rest).toEqual(['', '']);
  });
});
