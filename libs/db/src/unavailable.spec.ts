/**
 * Proves which database errors mean "unavailable" (answered 503 with Retry-After): refused and
 * dropped connections, admin and crash shutdowns, a server starting up, too many connections, a
 * pool that waited too long, also wrapped in an AggregateError or a cause; and that a failed
 * query on a live database (a constraint, a serialization failure, bad input) is not.
 */
import { describe, expect, it } from 'vitest';
import { isDatabaseUnavailable } from './unavailable';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isDatabaseUnavailable', () => {
  it('recognises an unreachable or unwilling database', () => {
    for (const error of [
      withCode('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432'),
      withCode('ECONNRESET'),
      withCode('57P01', 'terminating connection due to administrator command'),
      withCode('57P02'),
      withCode('57P03', 'the database system is starting up'),
      withCode('53300', 'sorry, too many clients already'),
      withCode('08006', 'connection failure'),
      new Error('timeout exceeded when trying to connect'),
      new Error('Connection terminated unexpectedly'),
      new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')], ''),
      new Error('query failed', { cause: withCode('ECONNREFUSED') }),
    ]) {
      expect(isDatabaseUnavailable(error), error.message).toBe(true);
    }
  });

  it('leaves failed queries on a live database, and anything else, to the usual handling', () => {
    for (const error of [withCode('23505', 'duplicate key value'), withCode('40001', 'could not serialize access'), withCode('22021'), new Error('boom'), 'ECONNREFUSED', null, undefined, { code: 42 }]) {
      expect(isDatabaseUnavailable(error)).toBe(false);
    }
  });
});
