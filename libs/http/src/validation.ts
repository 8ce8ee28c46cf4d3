import type { z } from 'zod';
import { ApiError } from './errors';

/**
 * Validates input at the edge. The first issue becomes a 400 (malformed: wrong type, missing
 * field) or 422 (well-formed but not acceptable) with the field path and the reason.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, where: 'body' | 'query' | 'params' = 'body'): z.infer<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const field = issue.path.map(String).join('.') || where;
  const malformed = issue.code === 'invalid_type' || issue.code === 'unrecognized_keys' || issue.code === 'invalid_union';
  throw new ApiError(malformed ? 400 : 422, malformed ? 'invalid_request' : 'unprocessable', `${field}: ${issue.message}`, field);
}
