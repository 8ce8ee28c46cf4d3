/**
 * Proves that what the framework answers by itself comes out in the platform's one error shape
 * `{ error: { code, message, field? } }`, with a stable code and the field at fault, on real NATS
 * and Postgres: malformed and empty JSON bodies, a body too large, an unsupported media type, an
 * unknown route (404), a known path with another method (405 with `Allow`), a malformed URL, and
 * malformed HTTP on the socket (400, 431). Generated requests (every route, from the published
 * schemas) are in the hostile-input suite, test/hostile/hostile-input.spec.ts.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HTTP_BODY_BYTES_MAX } from '@fastgpu/platform';
import { intakeService } from '../../apps/intake/src/intake.service';
import { billingService } from '../../apps/billing/src/billing.service';
import { reliabilityService } from '../../apps/reliability/src/reliability.service';
import { meteringService } from '../../apps/metering/src/metering.service';
import { ADMIN, isErrorShape, startEdge, type Edge } from './harness';

let edge: Edge;
let acme: string;

beforeAll(async () => {
  edge = await startEdge([intakeService, billingService, reliabilityService, meteringService]);
  acme = (await edge.tenantKey('acme')).secret;
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
