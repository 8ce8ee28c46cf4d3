import * as deadLetters from '@fastgpu/messaging';
import type { Bus, DeadLetter, DeadLetterRefusal, RedriveResult } from '@fastgpu/messaging';
import { CliError } from './log-reader';

/**
 * The dead-letter commands' access to the dead-letter stream: the one implementation in
 * libs/messaging (dead-letters.ts, which the /v1/dead-letters routes also use), with its
 * refusals turned into the CLI's one-line errors and exit codes.
 */
export { countDeadLetters, groupByOriginal, purgeDeadLetters, RedriveHeaders, type DeadLetter } from '@fastgpu/messaging';

/** Dead letters handled by one `redrive --all` or listed by `list` at most. */
export const DEAD_LETTERS_PER_COMMAND_MAX = deadLetters.DEAD_LETTERS_PER_PAGE_MAX;

/** Exit code of each refusal: 2 for a wrong or unknown sequence, 3 for a message that would only fail again. */
const REFUSAL_EXIT_CODE: Record<DeadLetterRefusal, number> = { 'invalid-sequence': 2, 'not-found': 2, 'no-subject': 2, undecodable: 3 };

async function asCliError<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof deadLetters.DeadLetterError) throw new CliError(error.message, REFUSAL_EXIT_CODE[error.refusal]);
    throw error;
  }
}

export async function listDeadLetters(bus: Bus, filter: { consumer?: string } = {}): Promise<DeadLetter[]> {
  return (await deadLetters.readDeadLetters(bus, { limit: DEAD_LETTERS_PER_COMMAND_MAX, ...(filter.consumer ? { consumer: filter.consumer } : {}) })).letters;
}

export function getDeadLetter(bus: Bus, sequence: number): Promise<DeadLetter> {
  return asCliError(deadLetters.getDeadLetter(bus, sequence));
}

export function deadLetterSiblings(bus: Bus, letter: DeadLetter): Promise<DeadLetter[]> {
  return deadLetters.deadLetterSiblings(bus, letter);
}

export function redrive(bus: Bus, letter: DeadLetter, options: { force?: boolean; siblings?: DeadLetter[] } = {}): Promise<RedriveResult> {
  return asCliError(deadLetters.redriveDeadLetter(bus, letter, options));
}
