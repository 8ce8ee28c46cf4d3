/**
 * Proves strict parsing of what arrives in a URL. The readers of libs/http accept exactly the
 * valid periods (YYYY-MM, 1970-01…9999-12), calendar dates, RFC 3339 instants, IANA zone names
 * and plain integers, and refuse everything else (`2026-13` is not 2027-01, `0000-01` is not
 * 1900), checked against independent oracles over generated inputs (fast-check). On real NATS
 * and Postgres, for every route at once (the platform's querystring parser and hook): a query
 * parameter given twice is 400 with that parameter as `field` (the billing review queue answered
 * 500), an invalid SLA period is 400 with `field: period`, and no generated query string of
 * repeated names, control characters, broken percent-encoding or every Unicode plane gets a 5xx
 * or an answer outside the one error shape.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { readDate, readInstant, readInteger, readPeriod, readTimeZone, YEAR_MAX, YEAR_MIN } from '@fastgpu/http';
import { intakeService } from '../../apps/intake/src/intake.service';
import { billingService } from '../../apps/billing/src/billing.service';
import { reliabilityService } from '../../apps/reliability/src/reliability.service';
import { meteringService } from '../../apps/metering/src/metering.service';
import { ADMIN, isErrorShape, startEdge, type Edge } from './harness';

const pad = (n: number, width: number) => String(n).padStart(width, '0');

describe('exact readers', () => {
  it('reads a period exactly when year and month are in range', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 99 }), (year, month) => {
        const read = readPeriod(`${pad(year, 4)}-${pad(month, 2)}`);
        const valid = year >= YEAR_MIN && year <= YEAR_MAX && month >= 1 && month <= 12;
        return valid ? typeof read !== 'string' && read.year === year && read.month === month : typeof read === 'string';
      }),
    );
    for (const bad of ['2026-13', '0000-01', '2026-00', '2026-1', '26-01', '2026-01-01', ' 2026-01', '2026-01\n', '２０２６-01', '+2026-01']) expect([bad, typeof readPeriod(bad)]).toEqual([bad, 'string']);
  });

  it('reads a date exactly when that day exists (the oracle: Date.UTC without roll-over)', () => {
    fc.assert(
      fc.property(fc.integer({ min: YEAR_MIN, max: YEAR_MAX }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }), (year, month, day) => {
        const instant = new Date(Date.UTC(year, month - 1, day));
        const exists = month >= 1 && month <= 12 && day >= 1 && instant.getUTCFullYear() === year && instant.getUTCMonth() === month - 1 && instant.getUTCDate() === day;
        const read = readDate(`${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`);
        return exists ? typeof read !== 'string' && read.day === day : typeof read === 'string';
      }),
    );
  });

  it('reads an RFC 3339 instant to the millisecond Date.parse gives, and refuses impossible ones', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('1970-01-02T00:00:00Z'), max: new Date('9999-12-30T00:00:00Z'), noInvalidDate: true }), fc.integer({ min: -23 * 60 - 59, max: 23 * 60 + 59 }), (date, offsetMinutes) => {
        // The same instant written in a zone `offsetMinutes` east of UTC.
        const local = new Date(date.getTime() + offsetMinutes * 60_000).toISOString().slice(0, 23);
        const sign = offsetMinutes < 0 ? '-' : '+';
        const offset = `${sign}${pad(Math.floor(Math.abs(offsetMinutes) / 60), 2)}:${pad(Math.abs(offsetMinutes) % 60, 2)}`;
        return readInstant(`${local}${offset}`) === date.getTime() && readInstant(date.toISOString()) === Date.parse(date.toISOString());
      }),
    );
    for (const bad of ['2026-02-30T00:00:00Z', '2026-01-01T24:00:00Z', '2026-01-01T00:60:00Z', '2026-01-01T00:00:00', '2026-01-01 00:00:00Z', '2026-01-01T00:00:00+24:00', '0000-01-01T00:00:00Z']) {
      expect([bad, typeof readInstant(bad)]).toEqual([bad, 'string']);
    }
  });

  it('accepts every zone Intl lists, as spelt, and nothing Intl would only guess at', () => {
    for (const zone of [...Intl.supportedValuesOf('timeZone'), 'UTC', 'Etc/GMT+5', 'US/Pacific']) expect([zone, readTimeZone(zone)]).toEqual([zone, zone]);
    for (const bad of ['europe/berlin', 'utc', '+05:00', 'GMT+5', 'Mars/Olympus', '', 'Europe/Berlin\u0000', 'Europe//Berlin', '../etc/passwd']) {
      expect([bad, typeof readTimeZone(bad)]).toEqual([bad, 'object']);
    }
  });

  it('reads integers written plainly, within bounds, and nothing coerced', () => {
    fc.assert(fc.property(fc.integer({ min: -1000, max: 1000 }), (n) => readInteger(String(n), -1000, 1000) === n));
    for (const bad of ['', ' 12', '12 ', '1e3', '0x10', '1.0', '+1', '١٢', '9007199254740993']) expect([bad, typeof readInteger(bad, 0, Number.MAX_SAFE_INTEGER)]).toEqual([bad, 'string']);
    expect(typeof readInteger('1001', 0, 1000)).toBe('string');
  });
});

describe('query strings at the edge', () => {
  let edge: Edge;
  let tenantKey: string;

  beforeAll(async () => {
    edge = await startEdge([intakeService, billingService, reliabilityService, meteringService]);
    tenantKey = (await edge.tenantKey('acme')).secret;
  });
  afterAll(async () => edge?.close());

  it('answers a repeated parameter with 400 naming it, on every route', async () => {
    // Each route is served (a repeated parameter is refused before routing matters).
    for (const path of ['/v1/billing/review-queue', '/v1/invoices', '/v1/usage']) expect([path, (await edge.http('GET', path, ADMIN)).status]).toEqual([path, 200]);
    for (const [path, key, field] of [
      ['/v1/billing/review-queue?tenantId=a&tenantId=b', ADMIN, 'tenantId'],
      ['/v1/invoices?tenantId=a&tenantId=b', ADMIN, 'tenantId'],
      ['/v1/jobs?limit=1&limit=2', tenantKey, 'limit'],
      ['/v1/sla-reports?period=2026-10&period=2026-11', tenantKey, 'period'],
      ['/v1/usage?tz=UTC&tz=Europe/Berlin', tenantKey, 'tz'],
    ] as const) {
      const answer = await edge.http('GET', path, key);
      expect([path, answer.status, answer.body?.error?.field]).toEqual([path, 400, field]);
      expect(isErrorShape(answer.body)).toBe(true);
    }
  });

  it('answers an invalid period with 400 naming it, and reads a valid one', async () => {
    for (const period of ['2026-13', '0000-01', '2026-1', '2026-00', 'last-month', '2026-1%00']) {
      const answer = await edge.http('GET', `/v1/sla-reports?period=${period}`, tenantKey);
      expect([period, answer.status, answer.body?.error?.field]).toEqual([period, 400, 'period']);
    }
    const good = await edge.http('GET', '/v1/sla-reports?period=2026-02', tenantKey);
    expect([good.status, good.body.period]).toEqual([200, '2026-02']);
  });

  it('answers a tenantId outside the id rule (a NUL, a space, a slash) with 400 naming it, on every route that filters by tenant', async () => {
    for (const path of ['/v1/usage', '/v1/usage/late', '/v1/billing/review-queue', '/v1/sla-reports', '/v1/invoices']) {
      for (const bad of ['%00', 'a%20b', 'a%2Fb']) {
        const answer = await edge.http('GET', `${path}?tenantId=${bad}`, ADMIN);
        expect([path, bad, answer.status, answer.body?.error?.field]).toEqual([path, bad, 400, 'tenantId']);
        expect(isErrorShape(answer.body)).toBe(true);
      }
    }
  });

  it('never answers a generated query string with a 5xx or outside the one error shape', async () => {
    const name = fc.constantFrom('period', 'tenantId', 'format', 'limit', 'tz', 'from', '__proto__', 'constructor', 'a[b]', '');
    const value = fc.oneof(fc.string({ unit: 'binary', maxLength: 12 }).map(encodeURIComponent), fc.constantFrom('%', '%E0%A4%A', '%00', '%FF', '2026-13', '0000-01', '+', '&', '%26%3D'));
    const query = fc.array(fc.tuple(name, value), { maxLength: 6 }).map((pairs) => pairs.map(([n, v]) => `${encodeURIComponent(n)}=${v}`).join('&'));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('/v1/sla-reports', '/v1/jobs', '/v1/billing/review-queue', '/v1/usage', '/v1/invoices'), query, async (path, q) => {
        const answer = await edge.http('GET', `${path}?${q}`, ADMIN);
        if (answer.status >= 500) return false;
        return answer.status < 400 || isErrorShape(answer.body);
      }),
      { numRuns: 60 },
    );
  });
});
