import { Body, Controller, Get, HttpCode, Inject, Param, Post, Query, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { ApiKeyGuard, Roles } from '@fastgpu/auth';
import { ApiDoc, conflict, notFound, pageParam, parseInput, queryParam } from '@fastgpu/http';
import { deadLetterSiblings, DeadLetterError, getDeadLetter, readDeadLetters, redriveDeadLetter, type DeadLetter } from '@fastgpu/messaging';
import { RUNTIME, type Runtime } from '@fastgpu/runtime';

/** A payload in a list is cut to this many bytes (the detail route gives it whole). */
export const DEAD_LETTER_PAYLOAD_BYTES_MAX = 4096;

const sequence = z.number().int().positive().describe('Sequence in the dead-letter stream: the id of the dead letter');

export const deadLettersQuery = z.object({
  limit: pageParam.limit(),
  after: queryParam.integer(0, Number.MAX_SAFE_INTEGER).optional().describe('The previous page\'s `next`: list the dead letters after this sequence'),
});
export const deadLetterParams = z.object({ seq: queryParam.integer(1, Number.MAX_SAFE_INTEGER) });
export const redriveRequest = z.object({ force: z.boolean().default(false).describe('Redrive even when the body still does not decode as an event (it can only fail again)') }).strict();

const deadLetterItem = z.object({
  seq: sequence,
  time: z.string().describe('When it was dead-lettered (the stream\'s time, ISO 8601)'),
  subject: z.string().describe('The subject the message was on (and is redriven to)'),
  consumer: z.string().describe('The consumer that could not handle it'),
  reason: z.string(),
  originalStream: z.string(),
  originalSequence: z.number().int().nonnegative().describe('Its sequence in its original stream'),
  eventType: z.string().nullable(),
  eventId: z.string().nullable(),
  count: z.number().int().positive().describe('Times it has been dead-lettered (grows with each failed redrive)'),
  deliveries: z.number().int().nonnegative(),
  payload: z.string().describe(`The body as UTF-8 text; in a list at most ${DEAD_LETTER_PAYLOAD_BYTES_MAX} bytes of it`),
  payloadBytes: z.number().int().nonnegative(),
  payloadTruncated: z.boolean(),
});
export const deadLettersResponse = z.object({ items: z.array(deadLetterItem), next: z.string().nullable().describe('Give as `after` for the next page; null on the last page') });
export const deadLetterResponse = deadLetterItem.extend({ headers: z.record(z.string(), z.array(z.string())) });
export const redriveResponse = z.object({
  seq: sequence,
  republishedTo: z.string(),
  sequence: z.number().int().positive().describe('Sequence of the republished message in its stream'),
  eventId: z.string().nullable().describe('Id of the republished event (its body\'s id)'),
  duplicate: z.boolean().describe('The stream had this redrive already (a retried request)'),
  alsoRemoved: z.array(sequence).describe('Copies of the same original message dead-lettered by other consumers, removed with it'),
});

type DeadLetterItem = z.output<typeof deadLetterItem>;

const decoder = new TextDecoder();

function itemOf(letter: DeadLetter, payloadBytesMax: number): DeadLetterItem {
  const truncated = letter.data.length > payloadBytesMax;
  return {
    seq: letter.sequence,
    time: letter.storedAt,
    subject: letter.originalSubject,
    consumer: letter.consumer,
    reason: letter.reason,
    originalStream: letter.originalStream,
    originalSequence: letter.originalSequence,
    eventType: letter.eventType ?? null,
    eventId: letter.eventId ?? null,
    count: letter.count,
    deliveries: letter.deliveries,
    // A character cut in two at the limit reads as U+FFFD.
    payload: decoder.decode(truncated ? letter.data.subarray(0, payloadBytesMax) : letter.data),
    payloadBytes: letter.data.length,
    payloadTruncated: truncated,
  };
}

/** A refusal of libs/messaging's dead-letter code as the HTTP answer: nothing changed. */
function asApiError(error: unknown): unknown {
  if (!(error instanceof DeadLetterError)) return error;
  switch (error.refusal) {
    case 'invalid-sequence':
    case 'not-found':
      return notFound('dead letter');
    case 'no-subject':
    case 'undecodable':
      return conflict(error.message.replace(' or pass --force', ' or redrive with force: true'), 'seq');
    default: {
      const unreachable: never = error.refusal;
      return unreachable;
    }
  }
}

/**
 * The dead-letter stream for SREs, as the events CLI's `dlq` shows it (the same code, in
 * libs/messaging dead-letters.ts): list, inspect, redrive.
 */
@Controller('v1/dead-letters')
@UseGuards(ApiKeyGuard)
@Roles('sre')
export class DeadLettersController {
  constructor(@Inject(RUNTIME) private readonly runtime: Runtime) {}

  @Get()
  @ApiDoc({ summary: 'Dead letters in stream order, a page at a time: what could not be handled, by which consumer, why, and its body (cut to 4 KiB)', query: deadLettersQuery, response: deadLettersResponse, tags: ['console'] })
  async list(@Query() query: unknown): Promise<z.output<typeof deadLettersResponse>> {
    const { limit, after } = parseInput(deadLettersQuery, query, 'query');
    const page = await readDeadLetters(this.runtime.bus, { limit, ...(after !== undefined ? { after } : {}) });
    return { items: page.letters.map((letter) => itemOf(letter, DEAD_LETTER_PAYLOAD_BYTES_MAX)), next: page.next === null ? null : String(page.next) };
  }

  @Get(':seq')
  @ApiDoc({ summary: 'One dead letter with its whole body and headers', response: deadLetterResponse, errors: { 404: 'no such dead letter (redriven or purged)' }, tags: ['console'] })
  async show(@Param('seq') seq: string): Promise<z.output<typeof deadLetterResponse>> {
    const letter = await this.letter(seq);
    return { ...itemOf(letter, Number.POSITIVE_INFINITY), headers: letter.headers };
  }

  @Post(':seq/redrive')
  @HttpCode(202)
  @ApiDoc({
    summary: 'Republish a dead letter to its original subject (and remove it, with the copies other consumers dead-lettered of the same message). If its cause is not fixed it fails again and comes back with its count grown.',
    body: redriveRequest,
    response: redriveResponse,
    errors: { 404: 'no such dead letter', 409: 'its body still does not decode (force: true redrives it anyway), or it names no subject to redrive to' },
    tags: ['console'],
  })
  async redrive(@Param('seq') seq: string, @Body() body: unknown): Promise<z.output<typeof redriveResponse>> {
    const { force } = parseInput(redriveRequest, body ?? {});
    const letter = await this.letter(seq);
    try {
      const siblings = await deadLetterSiblings(this.runtime.bus, letter);
      const result = await redriveDeadLetter(this.runtime.bus, letter, { force, siblings });
      return { seq: result.deadLetter, republishedTo: result.republishedTo, sequence: result.sequence, eventId: letter.eventId ?? null, duplicate: result.duplicate, alsoRemoved: result.alsoRemoved };
    } catch (error) {
      throw asApiError(error);
    }
  }

  private async letter(seq: string): Promise<DeadLetter> {
    const params = parseInput(deadLetterParams, { seq }, 'params');
    try {
      return await getDeadLetter(this.runtime.bus, params.seq);
    } catch (error) {
      throw asApiError(error);
    }
  }
}
