import type { z } from 'zod';
import { MULTI_LINE_TEXT_PATTERN, SINGLE_LINE_TEXT_PATTERN } from '@fastgpu/contracts';
import { ApiError } from './errors';

/** Patterns whose violation means the request is malformed (400), not merely unacceptable. */
const MALFORMED_PATTERNS = new Set([String(SINGLE_LINE_TEXT_PATTERN), String(MULTI_LINE_TEXT_PATTERN)]);

/**
 * 400 (malformed) or 422 (well-formed but not acceptable) for a zod issue. Malformed: a wrong
 * type, a missing or unknown field, no union member, text that no store can hold (a control
 * character, a lone surrogate: the shared text rule of libs/contracts), and anything a schema
 * marks with `MALFORMED` (the strict query readers: periods, dates, instants, zones, integers).
 */
export function isMalformed(issue: z.core.$ZodIssue): boolean {
  switch (issue.code) {
    case 'invalid_type':
    case 'unrecognized_keys':
    case 'invalid_union':
      return true;
    case 'invalid_format':
      return issue.format === 'regex' && MALFORMED_PATTERNS.has(String(issue.pattern));
    case 'custom':
      return (issue.params as { malformed?: unknown } | undefined)?.malformed === true;
    default:
      return false;
  }
}

/**
 * Validates input at the edge. The first issue becomes a 400 (malformed) or 422 (well-formed
 * but not acceptable) with the field path and the reason. A query or path parameter that does
 * not parse is always 400: a URL either names a resource and its options or it is malformed;
 * 422 is for bodies whose values are well-formed but not acceptable, and for combinations a
 * route checks after parsing.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, where: 'body' | 'query' | 'params' = 'body'): z.infer<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.map(String).join('.') || where;
  const malformed = where !== 'body' || isMalformed(issue);
  throw new ApiError(malformed ? 400 : 422, malformed ? 'invalid_request' : 'unprocessable', `${field}: ${issue.message}`, field);
}
