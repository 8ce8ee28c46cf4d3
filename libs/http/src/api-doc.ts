import { SetMetadata } from '@nestjs/common';
import type { z } from 'zod';

/**
 * Route documentation kept next to the handler, from the same zod schemas that validate it,
 * so the OpenAPI document is generated from the code and cannot drift.
 */
export interface ApiDocMetadata {
  summary: string;
  body?: z.ZodType;
  query?: z.ZodType;
  response?: z.ZodType;
  /** Status codes besides 200 that the route answers, with a reason. */
  errors?: Record<number, string>;
  /**
   * Success statuses, with when each is answered, for a route that sets its status at run time
   * (`reply.status(...)`), where Nest's metadata knows only the default.
   */
  success?: Record<number, string>;
  tags?: string[];
  /**
   * Media types the success body may also come in besides JSON (`text/csv`, `application/pdf`,
   * `text/plain`), chosen by `Accept` or fixed; documented as strings of that media type. A route
   * whose body is never JSON gives these and no `response`.
   */
  media?: string[];
  /**
   * Error statuses whose body may be another document than the one error shape (e.g. the
   * per-event outcomes of `POST /v1/events` with 409 and 422): documented as either that
   * schema or the Error shape.
   */
  errorBodies?: Record<number, z.ZodType>;
  /** Request headers the route reads (e.g. `Idempotency-Key`), with what they mean. */
  headers?: Record<string, string>;
}
export const API_DOC = 'fastgpu:api-doc';
export const ApiDoc = (metadata: ApiDocMetadata) => SetMetadata(API_DOC, metadata);
