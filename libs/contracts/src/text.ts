import { z } from 'zod';

/**
 * Text that every store can hold, written once for every edge (HTTP, gRPC, bus ingestion, CLI)
 * and for the event schemas themselves, so nothing reaches the log that a projection cannot
 * apply. PostgreSQL cannot store U+0000 in text, and a lone UTF-16 surrogate is not a Unicode
 * scalar value (it would be stored as U+FFFD, so the row would differ from the event).
 *
 * - `singleLineText`: names, labels, models, reasons shown on one line. No control character at
 *   all (Unicode category Cc: U+0000–U+001F, U+007F–U+009F) and no lone surrogate.
 * - `multiLineText`: free text that may span lines. Only TAB, LF and CR of the control
 *   characters are allowed; no lone surrogate.
 *
 * Every other code point, in every plane, is allowed.
 */
export const SINGLE_LINE_TEXT_PATTERN = /^[^\p{Cc}\p{Cs}]*$/u;
export const MULTI_LINE_TEXT_PATTERN = /^(?:[^\p{Cc}\p{Cs}]|[\t\n\r])*$/u;

export const SINGLE_LINE_TEXT_MESSAGE = 'must not contain control characters (U+0000–U+001F, U+007F–U+009F) or unpaired surrogates';
export const MULTI_LINE_TEXT_MESSAGE = 'must not contain control characters other than tab, line feed and carriage return, or unpaired surrogates';

/** One line of storable text, `minLength`..`maxLength` UTF-16 code units. */
export function singleLineText(maxLength: number, minLength = 0) {
  return z.string().min(minLength).max(maxLength).regex(SINGLE_LINE_TEXT_PATTERN, SINGLE_LINE_TEXT_MESSAGE);
}

/** Storable text that may contain tabs and line breaks. */
export function multiLineText(maxLength: number, minLength = 0) {
  return z.string().min(minLength).max(maxLength).regex(MULTI_LINE_TEXT_PATTERN, MULTI_LINE_TEXT_MESSAGE);
}

/** True when `value` could be a `singleLineText` (for code that checks text outside zod). */
export function isSingleLineText(value: string): boolean {
  return SINGLE_LINE_TEXT_PATTERN.test(value);
}
