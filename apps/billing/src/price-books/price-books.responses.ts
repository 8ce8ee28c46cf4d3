import { z } from 'zod';
import { priceSchema } from '@fastgpu/contracts';
import type { PriceBooksController } from './price-books.controller';

/**
 * What the price-book routes answer, as the zod schemas the OpenAPI document shows. A version's
 * prices are the `PriceBookPublished` prices of libs/contracts (defaults filled in); the
 * type-check holds each schema's fields equal to its handler's answer.
 */
const sequence = z.number().int().nonnegative().describe('Stream sequence of the PriceBookPublished event');

export const priceBooksResponse = z.object({
  priceBooks: z.array(
    z.object({
      priceBookId: z.string(),
      version: z.number().int().positive(),
      currency: z.string(),
      effectiveFrom: z.string().describe('RFC 3339 instant from which the version applies'),
      prices: z.array(priceSchema),
      publishedBy: z.string().describe('The API key that published it'),
      publishedAt: z.string(),
      eventSequence: sequence,
    }),
  ),
});

export const publishedPriceBookResponse = z.object({ priceBookId: z.string(), version: z.number().int().positive(), eventSequence: sequence });

/** Both ways assignable: neither side has a field, or a field type, the other lacks. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** Fails the type-check (at its line) unless given `true`. */
type Assert<T extends true> = T;
type Answer<K extends keyof PriceBooksController> = PriceBooksController[K] extends (...args: never[]) => infer R ? Awaited<R> : never;
export type AnswersMatchSchemas = [Assert<Same<Answer<'list'>, z.output<typeof priceBooksResponse>>>, Assert<Same<Answer<'publish'>, z.output<typeof publishedPriceBookResponse>>>];
