import { Controller, Get, Headers, Inject, Injectable, Query, Res, UseGuards, type OnModuleDestroy } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import { ApiKeyGuard, Authenticator, CurrentPrincipal, Roles, type Principal } from '@fastgpu/auth';
import { ApiDoc, ApiError, badRequest, parseInput } from '@fastgpu/http';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';
import { LiveFeed } from './live-feed';
import { LIVE_RESUME_AGE_MS_MAX, LIVE_RESUME_BOUNDS, LIVE_RESUME_EVENTS_MAX, reloadEventText, resumeVerdict, type ResumeBounds, type ResumeVerdict } from './live-resume';

/** Live feeds one process serves at once (each is one consumer on the event stream); past it, 503. */
export const LIVE_FEEDS_MAX = 512;

const SEQUENCE_PATTERN = /^(0|[1-9][0-9]{0,15})$/;
export const liveQuery = z.object({
  after: z.string().regex(SEQUENCE_PATTERN, 'a stream sequence (digits)').optional().describe('Start after this stream sequence (as Last-Event-ID does); without either, the feed starts with the next event appended'),
});

/** The feeds this process has open: bounded, and all ended when the app stops. */
@Injectable()
export class LiveFeeds implements OnModuleDestroy {
  readonly open = new Set<LiveFeed>();
  /** How far back a feed resumes (live-resume.ts); tests narrow it. */
  resumeBounds: ResumeBounds = LIVE_RESUME_BOUNDS;

  add(feed: LiveFeed): void {
    if (this.open.size >= LIVE_FEEDS_MAX) throw new ApiError(503, 'unavailable', `this server has ${LIVE_FEEDS_MAX} live feeds open; retry shortly`, undefined, { 'retry-after': '5' });
    this.open.add(feed);
    void feed.done.then(() => this.open.delete(feed));
  }

  async onModuleDestroy(): Promise<void> {
    await Promise.all([...this.open].map((feed) => feed.stop('server-stopped')));
  }
}

/** The part of Fastify's reply this route uses: it takes over the socket to stream. */
interface Reply {
  hijack(): void;
  raw: ServerResponse;
}

/**
 * GET /v1/live: the event log as Server-Sent Events, filtered by the caller's role (libs/console
 * live-audience.ts). The browser console reads it with fetch (the key in the Authorization
 * header, never in the URL), one connection per tab.
 */
@Controller('v1/live')
@UseGuards(ApiKeyGuard)
@Roles('tenant', 'finance', 'sre')
export class LiveController {
  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(Authenticator) private readonly authenticator: Authenticator,
    @Inject(LiveFeeds) private readonly feeds: LiveFeeds,
  ) {}

  @Get()
  @ApiDoc({
    summary:
      `The event log live, as Server-Sent Events (text/event-stream): one message per event the key may see — \`id\` its stream sequence, \`event\` its type, \`data\` one JSON line {seq, type, time, tenantId, subject, data}. A tenant key receives only events of its own tenant (its jobs, sub-tasks, leases, usage, invoices, credits); finance every tenant's usage, invoice, credit and price-book events; sre and admin every event. A comment line every 15 s keeps the connection open. Starts with the next event, or after Last-Event-ID / ?after=; one too far back (over ${LIVE_RESUME_EVENTS_MAX} events or ${LIVE_RESUME_AGE_MS_MAX / 60_000} minutes behind, or no longer kept) starts with the next event instead, after a \`reload\` message (id: the new Last-Event-ID; data: {reason, message, missed, resumeAfter}) telling the client to refetch what it shows. A client that does not keep up is disconnected (resume with Last-Event-ID). Events that do not decode are left out (their consumers dead-letter them).`,
    query: liveQuery,
    media: ['text/event-stream'],
    headers: { 'last-event-id': 'resume after this event id (a stream sequence); wins over ?after=' },
    errors: { 400: 'Last-Event-ID or after is not a stream sequence', 429: 'too many open streams for this tenant (or platform key)', 503: 'this server has too many live feeds open' },
    tags: ['console'],
  })
  async live(@CurrentPrincipal() principal: Principal, @Query() query: unknown, @Headers('last-event-id') lastEventId: string | undefined, @Res() reply: Reply): Promise<void> {
    const { after } = parseInput(liveQuery, query, 'query');
    if (lastEventId !== undefined && !SEQUENCE_PATTERN.test(lastEventId)) throw badRequest('Last-Event-ID must be an event id this endpoint sent', 'Last-Event-ID');
    const resumeAfter = lastEventId ?? after;
    const start: ResumeVerdict = resumeAfter === undefined ? { kind: 'resume', fromSequence: await LiveFeed.nowSequence(this.runtime.bus) } : await this.resume(Number(resumeAfter));
    const fromSequence = start.fromSequence;
    const release = this.authenticator.openStream(principal);
    const raw = reply.raw;
    const feed = new LiveFeed(this.runtime.bus, { role: principal.role, tenantId: principal.tenantId }, {
      write: (text) => void raw.write(text),
      get bufferedBytes() {
        return raw.writableLength;
      },
      end: () => raw.end(),
    });
    try {
      this.feeds.add(feed);
      await feed.open(fromSequence);
    } catch (error) {
      release();
      await feed.stop('server-stopped');
      throw error;
    }
    void feed.done.then(release);
    reply.hijack();
    raw.on('close', () => void feed.stop('client-closed'));
    raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    // The first bytes now, not with the first event: a client of a quiet log learns at once that it is connected.
    raw.write(`: live from ${fromSequence}\n\n`);
    if (start.kind === 'reload') raw.write(reloadEventText(start, this.feeds.resumeBounds));
    try {
      await feed.run();
    } catch {
      // The headers are out: a failure can only end the stream (the client resumes with Last-Event-ID).
      await feed.stop('consumer-ended');
    }
    if (raw.destroyed) await feed.stop('client-closed');
  }

  /** Where a feed resumed after `afterSequence` starts: just after it, or now with a reload when it is too far back. */
  private async resume(afterSequence: number): Promise<ResumeVerdict> {
    const { bus } = this.runtime;
    const bounds = this.feeds.resumeBounds;
    const { state } = await bus.jsm.streams.info(bus.topology.streams.events);
    const stream = { firstSequence: state.first_seq, lastSequence: state.last_seq };
    const missed = stream.lastSequence - afterSequence;
    // The first missed event's time is read only when the count and the stream's start allow resuming.
    const readTime = missed > 0 && missed <= bounds.eventsMax && afterSequence + 1 >= stream.firstSequence;
    const firstMissed = readTime ? await bus.jsm.streams.getMessage(bus.topology.streams.events, { seq: afterSequence + 1 }).catch(() => null) : null;
    return resumeVerdict(afterSequence, stream, firstMissed?.time.getTime(), this.runtime.clock.now().getTime(), bounds);
  }
}
