import { z } from 'zod';
import type { IngestOutcome } from './external.ingest';

/**
 * What `POST /v1/events` answers: the outcome of each event of the request (`IngestOutcome`),
 * as the zod schema the OpenAPI document shows. The type-check holds the two equal.
 */
const count = z.number().int().nonnegative();

export const ingestOutcomeResponse = z.object({
  results: z.array(
    z.object({
      id: z.string().nullable().describe("The client's CloudEvent id, when the event had a string one"),
      index: count.describe('Position of the event in the request'),
      status: z.enum(['accepted', 'accepted-late', 'duplicate', 'rejected', 'conflict']).describe('docs/metering.md: accepted (published), accepted-late (beyond the lateness horizon, for review), duplicate (same source, id and content as before), rejected (invalid, see field and reason), conflict (same source and id, other content)'),
      eventId: z.string().optional().describe('The internal event id (accepted, accepted-late and duplicate events)'),
      field: z.string().optional(),
      reason: z.string().optional(),
    }),
  ),
  accepted: count,
  acceptedLate: count,
  duplicates: count,
  rejected: count,
  conflicts: count,
});

/** Both ways assignable: neither side has a field, or a field type, the other lacks. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Fails the type-check (at its line) unless given `true`. */
type Assert<T extends true> = T;
export type AnswerMatchesSchema = Assert<Same<IngestOutcome, z.output<typeof ingestOutcomeResponse>>>;
