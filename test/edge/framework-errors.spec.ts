/**
 * Proves that what the framework answers by itself comes out in the platform's one error shape
 * `{ error: { code, message, field? } }`, with a stable code and the field at fault, on real NATS
 * and Postgres: malformed and empty JSON bodies, a body too large, an unsupported media type, an
 * unknown route (404), a known path with another method (405 with `Allow`), a malformed URL, and
 * malformed HTTP on the socket (400, 431). Then, over generated requests (fast-check: methods,
 * paths, content types, bodies with control characters and every Unicode plane) to the write
 * routes of every service, as two tenants: no 5xx, every error in the one shape (or, for
 * `POST /v1/events`, its documented per-event outcomes), every 400 with a field.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { HTTP_BODY_BYTES_MAX } from '@fastgpu/platform';
import { intakeService } from '../../apps/intake/src/intake.service';
import { billingService } from '../../apps/billing/src/billing.service';
import { reliabilityService } from '../../apps/reliability/src/reliability.service';
import { meteringService } from '../../apps/metering/src/metering.service';
import { ADMIN, isErrorShape, startEdge, type Edge } from './harness';

let edge: Edge;
let acme: string;
let globex: string;

beforeAll(async () => {
  edge = await startEdge([intakeService, billingService, reliabilityService, meteringService]);
  acme = (await edge.tenantKey('acme')).secret;
  globex = (await edge.tenantKey('globex')).secret;
});
afterAll(async () => edge?.close());

/** Writes raw bytes to the HTTP port and reads the whole answer (the server closes the socket). */
function raw(request: string): Promise<{ status: number; body: unknown }> {
  const { hostname, port } = new URL(edge.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.end(request));
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', body = ''] = text.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), body: body ? JSON.parse(body) : undefined });
    });
  });
}

describe("the framework's own answers", () => {
  it('come in the one shape with the code and the field at fault', async () => {
    const json = { 'content-type': 'application/json' };
    const cases: Array<[string, Promise<Awaited<ReturnType<Edge['http']>>>, number, string, string | undefined]> = [
      ['malformed JSON', edge.http('POST', '/v1/jobs', acme, '{"projectId":', json), 400, 'invalid_request', 'body'],
      ['empty JSON body', edge.http('POST', '/v1/jobs', acme, '', json), 400, 'invalid_request', 'body'],
      ['prototype pollution', edge.http('POST', '/v1/jobs', acme, '{"__proto__":{"admin":true}}', json), 400, 'invalid_request', 'body'],
      ['body too large', edge.http('POST', '/v1/jobs', acme, `"${'x'.repeat(HTTP_BODY_BYTES_MAX)}"`, json), 413, 'payload_too_large', 'body'],
      ['unsupported media type', edge.http('POST', '/v1/jobs', acme, '<job/>', { 'content-type': 'application/xml' }), 415, 'unsupported_media_type', 'Content-Type'],
      ['unknown route', edge.http('GET', '/v1/nothing-here', acme), 404, 'not_found', undefined],
      ['unknown route, no key', edge.http('GET', '/nothing-here'), 404, 'not_found', undefined],
      ['malformed URL', edge.http('GET', '/v1/jobs/%E0%A4%A', acme), 400, 'invalid_request', 'path'],
    ];
    for (const [name, pending, status, code, field] of cases) {
      const answer = await pending;
      expect([name, answer.status, answer.body?.error?.code, answer.body?.error?.field]).toEqual([name, status, code, field]);
      expect([name, isErrorShape(answer.body)]).toEqual([name, true]);
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
    }
  });

  it('answers a known path with another method 405 and Allow', async () => {
    const patch = await edge.http('PATCH', '/v1/jobs', acme);
    expect([patch.status, patch.body.error.code, patch.headers.get('allow')]).toEqual([405, 'method_not_allowed', 'GET, HEAD, POST']);
    expect(isErrorShape(patch.body)).toBe(true);
    const dryRunPath = await edge.http('PUT', '/v1/tenants', ADMIN);
    expect([dryRunPath.status, dryRunPath.headers.get('allow')]).toEqual([405, 'POST']);
    // A path parameter matches whatever the id: DELETE on a job id is allowed, PUT is not.
    const onJob = await edge.http('PUT', '/v1/jobs/any-id', acme);
    expect([onJob.status, onJob.headers.get('allow')]).toEqual([405, 'DELETE, GET, HEAD']);
  });

  it('answers malformed HTTP on the socket in the one shape', async () => {
    const garbage = await raw('GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(garbage.status).toBe(400);
    expect(garbage.body).toMatchObject({ error: { code: 'invalid_request', field: 'request' } });
    expect(isErrorShape(garbage.body)).toBe(true);
    const hugeHeader = await raw(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    expect(hugeHeader.status).toBe(431);
    expect(isErrorShape(hugeHeader.body)).toBe(true);
  });
});

describe('generated requests to the write routes', () => {
  /** Write routes of intake, billing, metering and reliability, with ids that exist or not. */
  const writeRoutes = [
    ['POST', '/v1/jobs'],
    ['DELETE', '/v1/jobs/job-1'],
    ['POST', '/v1/leases'],
    ['DELETE', '/v1/leases/lease-1'],
    ['POST', '/v1/tenants'],
    ['POST', '/v1/tenants/acme/api-keys'],
    ['POST', '/v1/api-keys'],
    ['DELETE', '/v1/api-keys/key-1'],
    ['POST', '/v1/events'],
    ['POST', '/v1/price-books'],
    ['POST', '/v1/billing/credit-grants'],
    ['POST', '/v1/billing/tax-rates'],
    ['POST', '/v1/invoices/inv-1/finalize'],
    ['POST', '/v1/invoices/inv-1/credit-notes'],
  ] as const;

  /** JSON values with text from every Unicode plane, control characters and lone surrogates included. */
  const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 24 }), fc.string({ unit: 'grapheme', maxLength: 8 }), fc.constantFrom('\u0000', 'a\u0000b', '\ud800', '\u001b[2J', '\u2028', '𝔘𝔫𝔦', 'a'.repeat(600)));
  const value = fc.letrec((tie) => ({
    node: fc.oneof({ depthSize: 'small' }, text, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(tie('node'), { maxLength: 4 }), fc.dictionary(text, tie('node'), { maxKeys: 4 })),
  })).node;
  /** Bodies near the routes' schemas: their field names with generated values, or anything at all. */
  const fieldNames = ['projectId', 'gpuModels', 'gpusPerSubtask', 'subtaskCount', 'runtimeSeconds', 'name', 'tenantId', 'role', 'label', 'reason', 'gpus', 'priceBookId', 'currency', 'prices', 'amount', 'rates', 'effectiveFrom', 'specversion', 'id', 'source', 'type', 'data'];
  const body = fc.oneof(fc.dictionary(fc.constantFrom(...fieldNames), value, { maxKeys: 6 }), value);
  const contentType = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/cloudevents+json', 'application/cloudevents-batch+json', undefined);

  it('never get a 5xx, and every error is in the one shape with a field on every 400', async () => {
    const keys = [acme, globex, ADMIN];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...writeRoutes), body, contentType, fc.integer({ min: 0, max: keys.length - 1 }), async ([method, path], payload, type, k) => {
        const answer = await edge.http(method, path, keys[k], JSON.stringify(payload), type ? { 'content-type': type } : {});
        if (answer.status >= 500) throw new Error(`${method} ${path} answered ${answer.status}: ${answer.text}`);
        if (answer.status < 400) return true;
        // The documented exception: POST /v1/events answers per-event outcomes (all rejected: 422).
        if (path === '/v1/events' && Array.isArray(answer.body?.results)) return true;
        if (!isErrorShape(answer.body)) throw new Error(`${method} ${path} ${answer.status} not in the one shape: ${answer.text}`);
        if (answer.status === 400 && !answer.body.error.field) throw new Error(`${method} ${path} 400 without a field: ${answer.text}`);
        return true;
      }),
      { numRuns: 150 },
    );
  });
});
