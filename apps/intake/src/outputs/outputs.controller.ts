import { Controller, Get, Headers, Inject, Param, Query, Res, UseGuards } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import type { ObjectResult } from '@nats-io/obj';
import { ApiKeyGuard, CurrentPrincipal, Roles, type Principal } from '@fastgpu/auth';
import { ApiDoc, badRequest, parseInput } from '@fastgpu/http';
import { logsQuery, resultIndexParams, resultQuery, resultsResponse } from './outputs.schema';
import { OutputsService, type LogSink } from './outputs.service';

/** The part of Fastify's reply these routes use: they take over the socket to stream. */
interface Reply {
  hijack(): void;
  raw: ServerResponse;
}

const LAST_EVENT_ID_PATTERN = /^(0|[1-9][0-9]{0,15})$/;

/** Writes to the socket, waiting when it is full; a closed socket makes writes no-ops. */
function socketSink(raw: ServerResponse): LogSink {
  let closed = false;
  const listeners: Array<() => void> = [];
  raw.on('close', () => {
    closed = true;
    for (const listener of listeners.splice(0)) listener();
  });
  return {
    get closed() {
      return closed;
    },
    onClose(listener) {
      if (closed) listener();
      else listeners.push(listener);
    },
    async write(chunk) {
      if (closed) return;
      if (!raw.write(chunk)) await Promise.race([once(raw, 'drain'), once(raw, 'close')]);
    },
  };
}

/**
 * A job's logs and results as node agents wrote them (docs/node-protocol.md): read by the job's
 * tenant (and sre, admin); another tenant's job is 404 like a missing one.
 */
@Controller('v1/jobs')
@UseGuards(ApiKeyGuard)
@Roles('tenant', 'sre')
export class OutputsController {
  constructor(@Inject(OutputsService) private readonly outputs: OutputsService) {}

  @Get(':jobId/logs')
  @ApiDoc({
    summary:
      'A job\'s stdout/stderr as Server-Sent Events (text/event-stream): one event per log message, `id` its stream sequence, `event` stdout, stderr, truncated or end, `data` JSON {subtask, attempt, kind, offset, text}. Without follow the response ends with what is stored; with follow=true it stays open for new output until the attempt ends (subtask and attempt given) or the job has ended, at most an hour; Last-Event-ID resumes after that event.',
    query: logsQuery,
    media: ['text/event-stream'],
    headers: { 'last-event-id': 'resume after this event id (a stream sequence)' },
    errors: { 404: 'no such job for this caller, or no such sub-task', 429: 'too many followed log streams open for this tenant' },
    tags: ['jobs'],
  })
  async logs(@CurrentPrincipal() principal: Principal, @Param('jobId') jobId: string, @Query() query: unknown, @Headers('last-event-id') lastEventId: string | undefined, @Res() reply: Reply) {
    const parsed = parseInput(logsQuery, query, 'query');
    if (lastEventId !== undefined && !LAST_EVENT_ID_PATTERN.test(lastEventId)) throw badRequest('Last-Event-ID must be an event id this endpoint sent', 'Last-Event-ID');
    const reader = await this.outputs.openLogs(principal, jobId, parsed, lastEventId === undefined ? 0 : Number(lastEventId));
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    // Sent now, not with the first event: a follower of a quiet attempt learns at once that it is connected.
    raw.flushHeaders();
    const sink = socketSink(raw);
    try {
      await reader.run(sink);
    } catch {
      // The headers are out: a failure can only end the stream (a client resumes with Last-Event-ID).
    }
    if (!sink.closed) raw.end();
  }

  @Get(':jobId/results')
  @ApiDoc({
    summary: 'The stored results of a job\'s sub-tasks (index, attempt, bytes, SHA-256, exit code, node, when stored; failed attempts\' results too), and its aggregate once built (null before, or when its workload\'s rule is none)',
    response: resultsResponse,
    errors: { 404: 'no such job for this caller' },
    tags: ['jobs'],
  })
  async results(@CurrentPrincipal() principal: Principal, @Param('jobId') jobId: string) {
    const results = await this.outputs.listResults(principal, jobId);
    return { jobId, results, aggregate: await this.outputs.aggregateOf(await this.outputs.job(principal, jobId)) };
  }

  @Get(':jobId/results/aggregate')
  @ApiDoc({
    summary:
      'The job\'s aggregate result, byte-exact (application/octet-stream), with Repr-Digest (SHA-256) and ETag: built by its workload\'s rule (concat: the results\' bytes in sub-task order; jsonl: their JSON lines in sub-task order) once every sub-task succeeded, and announced by JobResultsAggregated',
    media: ['application/octet-stream'],
    errors: { 404: 'no such job for this caller, no aggregate (yet, or the rule is none), or aggregation failed (the message says why)' },
    tags: ['jobs'],
  })
  async aggregate(@CurrentPrincipal() principal: Principal, @Param('jobId') jobId: string, @Res() reply: Reply) {
    const { view, result } = await this.outputs.openAggregate(principal, jobId);
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(view.bytes),
      'content-disposition': `attachment; filename="${jobId}-aggregate"`,
      'repr-digest': `sha-256=:${Buffer.from(view.sha256, 'hex').toString('base64')}:`,
      etag: `"${view.sha256}"`,
      'x-fastgpu-aggregate-rule': view.rule,
    });
    await this.pipe(raw, result);
  }

  @Get(':jobId/results/:index')
  @ApiDoc({
    summary: 'One sub-task\'s result, byte-exact (application/octet-stream), with Repr-Digest (SHA-256), ETag and the attempt and exit code in headers; the latest attempt that stored one unless ?attempt= names it. A result whose bytes do not match their digest is cut off, never completed.',
    query: resultQuery,
    media: ['application/octet-stream'],
    errors: { 404: 'no such job for this caller, no such sub-task, or no stored result' },
    tags: ['jobs'],
  })
  async result(@CurrentPrincipal() principal: Principal, @Param('jobId') jobId: string, @Param('index') index: string, @Query() query: unknown, @Res() reply: Reply) {
    const params = parseInput(resultIndexParams, { index }, 'params');
    const { attempt } = parseInput(resultQuery, query, 'query');
    const { view, result } = await this.outputs.openResult(principal, jobId, params.index, attempt);
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(view.bytes),
      'content-disposition': `attachment; filename="${jobId}-${view.subtaskIndex}-${view.attempt}"`,
      'repr-digest': `sha-256=:${Buffer.from(view.sha256, 'hex').toString('base64')}:`,
      etag: `"${view.sha256}"`,
      'x-fastgpu-attempt': String(view.attempt),
      'x-fastgpu-exit-code': String(view.exitCode),
    });
    await this.pipe(raw, result);
  }

  /** Streams an object to the socket; the store checks the digest once every chunk is read: a mismatch cuts the response short. */
  private async pipe(raw: ServerResponse, result: ObjectResult): Promise<void> {
    const sink = socketSink(raw);
    try {
      for await (const chunk of Readable.fromWeb(result.data)) {
        if (sink.closed) break;
        await sink.write(chunk as Uint8Array);
      }
      const error = await result.error;
      if (error) raw.destroy(error);
      else raw.end();
    } catch (error) {
      raw.destroy(error as Error);
    }
  }
}
