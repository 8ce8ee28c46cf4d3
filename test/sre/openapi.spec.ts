/**
 * Proves the OpenAPI document is generated from the running app's routes and is valid: it is
 * served at /docs/openapi.json (and an HTML index at /docs), lists the real routes of every
 * service with their zod-derived schemas, uses one error shape, and validates against the
 * OpenAPI 3.1 document structure (checked with a JSON Schema 2020-12 validator, ajv) while
 * every embedded schema compiles as JSON Schema 2020-12, and against the official OpenAPI 3.1
 * schema (@seriousme/openapi-schema-validator). Every operation documents its error responses
 * (400 and 500 everywhere; 401, 403 and 429 with Retry-After where a key is needed; 404 with a
 * path parameter; 409 and 422 on writes) with the shared Error schema, its roles as the security
 * requirement, its success schema (every route has one: a route without it is marked
 * `x-fastgpu-response-schema-missing` and fails here), its header and named query parameters, and
 * its real path (`/v1/jobs:dry-run`). A wrong document fails here; test/sre/openapi-responses.spec.ts
 * checks the success schemas against real answers.
 */
import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { z } from 'zod';
import { Validator } from '@seriousme/openapi-schema-validator';
import { createRuntime, startServices, type OwnedRuntime, type StartedApp } from '@fastgpu/platform';
import { createTestEnvironment, type TestEnvironment } from '@fastgpu/testing';
import { OpenApiModule, buildOpenApiDocument, openApiPath } from '../../libs/openapi/src';
import { allServices } from '../../apps/fastgpu/src/services';

/** The OpenAPI 3.1 structure this project emits, as JSON Schema (after spec.openapis.org/oas/v3.1.0, sections 4.8.x). */
const openApi31Structure = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  required: ['openapi', 'info', 'paths'],
  additionalProperties: false,
  patternProperties: { '^x-': {} },
  properties: {
    openapi: { type: 'string', pattern: '^3\\.1\\.\\d+(-.+)?$' },
    info: { type: 'object', required: ['title', 'version'], properties: { title: { type: 'string' }, version: { type: 'string' }, description: { type: 'string' } } },
    jsonSchemaDialect: { type: 'string', format: 'uri' },
    paths: { type: 'object', propertyNames: { pattern: '^/' }, additionalProperties: { $ref: '#/$defs/pathItem' } },
    webhooks: { type: 'object', additionalProperties: { $ref: '#/$defs/pathItem' } },
    components: {
      type: 'object',
      additionalProperties: false,
      properties: {
        schemas: { type: 'object', additionalProperties: { type: ['object', 'boolean'] } },
        responses: { type: 'object', additionalProperties: { $ref: '#/$defs/response' } },
        securitySchemes: { type: 'object', additionalProperties: { type: 'object', required: ['type'], properties: { type: { enum: ['apiKey', 'http', 'mutualTLS', 'oauth2', 'openIdConnect'] } }, if: { properties: { type: { const: 'http' } } }, then: { required: ['scheme'] } } },
      },
    },
  },
  $defs: {
    pathItem: {
      type: 'object',
      additionalProperties: false,
      patternProperties: { '^x-': {} },
      properties: Object.fromEntries(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'].map((m) => [m, { $ref: '#/$defs/operation' }])),
    },
    operation: {
      type: 'object',
      required: ['responses'],
      additionalProperties: false,
      patternProperties: { '^x-': {} },
      properties: {
        operationId: { type: 'string' },
        summary: { type: 'string' },
        description: { type: 'string' },
        tags: { type: 'array', items: { type: 'string' } },
        parameters: { type: 'array', items: { $ref: '#/$defs/parameter' } },
        requestBody: { type: 'object', required: ['content'], properties: { required: { type: 'boolean' }, content: { $ref: '#/$defs/content' } } },
        responses: { type: 'object', minProperties: 1, propertyNames: { pattern: '^([1-5](\\d\\d|XX)|default)$' }, additionalProperties: { $ref: '#/$defs/response' } },
        security: { type: 'array', items: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } } },
      },
    },
    parameter: {
      type: 'object',
      required: ['name', 'in', 'schema'],
      additionalProperties: false,
      properties: { name: { type: 'string' }, in: { enum: ['query', 'header', 'path', 'cookie'] }, required: { type: 'boolean' }, schema: { type: ['object', 'boolean'] }, description: { type: 'string' } },
      if: { properties: { in: { const: 'path' } } },
      then: { required: ['required'], properties: { required: { const: true } } },
    },
    response: {
      type: 'object',
      required: ['description'],
      additionalProperties: false,
      properties: {
        description: { type: 'string' },
        content: { $ref: '#/$defs/content' },
        headers: { type: 'object', additionalProperties: { type: 'object', required: ['schema'], additionalProperties: false, properties: { description: { type: 'string' }, schema: { type: 'object' } } } },
      },
    },
    content: { type: 'object', additionalProperties: { type: 'object', additionalProperties: false, properties: { schema: { type: ['object', 'boolean'] } } } },
  },
};

let env: TestEnvironment;
let runtime: OwnedRuntime;
let started: StartedApp;
type Doc = ReturnType<typeof buildOpenApiDocument>;

beforeAll(async () => {
  env = await createTestEnvironment();
  runtime = await createRuntime(env.config);
  started = await startServices(runtime, [...allServices, { name: 'intake', module: OpenApiModule }], { port: 0, logger: false });
});
afterAll(async () => {
  await started?.close();
  await runtime?.close();
  await env?.cleanup();
});

function validateDocument(doc: unknown): string[] {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  const validate = ajv.compile(openApi31Structure);
  const problems = validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
  const d = doc as Doc;
  // Every embedded schema must itself be valid JSON Schema 2020-12 (OpenAPI 3.1's dialect).
  const schemaChecker = new Ajv2020({ strict: false, validateFormats: false });
  const check = (where: string, schema: unknown) => {
    if (!schemaChecker.validateSchema(schema as object)) problems.push(`${where}: ${schemaChecker.errorsText(schemaChecker.errors)}`);
  };
  const ids = new Set<string>();
  for (const [path, item] of Object.entries(d.paths ?? {})) {
    for (const [method, raw] of Object.entries(item)) {
      const op = raw as { operationId: string; parameters?: Array<{ name: string; in: string; schema: unknown }>; requestBody?: { content: Record<string, { schema: unknown }> }; responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }> };
      if (ids.has(op.operationId)) problems.push(`duplicate operationId ${op.operationId}`);
      ids.add(op.operationId);
      const templated = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      const declared = (op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name);
      if (JSON.stringify(templated.sort()) !== JSON.stringify(declared.sort())) problems.push(`${method} ${path}: path parameters ${declared} do not match the template`);
      for (const p of op.parameters ?? []) check(`${method} ${path} parameter ${p.name}`, p.schema);
      for (const media of Object.values(op.requestBody?.content ?? {})) check(`${method} ${path} body`, media.schema);
      for (const [status, response] of Object.entries(op.responses)) {
        for (const media of Object.values(response.content ?? {})) {
          const ref = media.schema.$ref;
          if (ref && !(ref.startsWith('#/components/schemas/') && d.components.schemas[ref.slice(21)])) problems.push(`${method} ${path} ${status}: unresolved ${ref}`);
          if (!ref) check(`${method} ${path} ${status}`, media.schema);
        }
      }
    }
  }
  // Webhook bodies (the top-level `webhooks`) are JSON Schema 2020-12 too.
  for (const [name, item] of Object.entries(d.webhooks ?? {})) {
    for (const op of Object.values(item) as Array<{ requestBody?: { content: Record<string, { schema: unknown }> } }>) for (const media of Object.values(op.requestBody?.content ?? {})) check(`webhook ${name} body`, media.schema);
  }
  return problems;
}

describe('OpenAPI', () => {
  it('serves a valid OpenAPI 3.1 document generated from the running routes', async () => {
    const response = await fetch(`${started.url}/docs/openapi.json`);
    expect(response.status).toBe(200);
    const doc = (await response.json()) as Doc;
    expect(validateDocument(doc)).toEqual([]);
    expect(doc.openapi).toBe('3.1.0');
    // And against the official OpenAPI 3.1 JSON Schema (as published by the OpenAPI Initiative).
    const official = await new Validator().validate(doc);
    expect(official.errors ?? []).toEqual([]);
    expect(official.valid).toBe(true);

    // The real routes are there, with zod-derived schemas and the route's auth.
    const submit = doc.paths['/v1/jobs']?.post as { requestBody: { content: { 'application/json': { schema: { properties: Record<string, unknown>; required: string[] } } } }; security: unknown[]; responses: Record<string, unknown> };
    expect(submit.requestBody.content['application/json'].schema.required).toEqual(expect.arrayContaining(['projectId', 'gpuModels', 'gpusPerSubtask', 'runtimeSeconds']));
    // The roles a key must have are the security requirement (OpenAPI 3.1 allows role names for http schemes).
    expect(submit.security).toEqual([{ apiKey: ['tenant', 'admin'] }]);
    expect(Object.keys(submit.responses)).toEqual(expect.arrayContaining(['400', '401', '422']));
    // Statuses the handler sets at run time are documented as it answers them, not as Nest's default 201.
    expect(Object.keys(submit.responses)).toEqual(expect.arrayContaining(['200', '202']));
    expect(submit.responses['201']).toBeUndefined();
    const getJob = doc.paths['/v1/jobs/{jobId}']?.get as { parameters: Array<{ name: string; in: string }> };
    expect(getJob.parameters).toContainEqual(expect.objectContaining({ name: 'jobId', in: 'path', required: true }));
    expect(doc.paths['/healthz']?.get).toBeDefined();
    expect(doc.components.schemas.Error).toMatchObject({ required: ['error'] });

    // Every declared route of every controller is in the document (nothing hand-maintained).
    const operations = Object.values(doc.paths).flatMap((item) => Object.keys(item));
    expect(operations.length).toBeGreaterThanOrEqual(8);
  });

  it('documents every route: its error responses with the shared schema, its roles as security, its success schema, its real path', async () => {
    const doc = (await (await fetch(`${started.url}/docs/openapi.json`)).json()) as Doc;
    type Operation = { security: Array<Record<string, string[]>>; 'x-fastgpu-roles'?: string[]; 'x-fastgpu-response-schema-missing'?: boolean; description?: string; parameters?: Array<{ name: string; in: string }>; responses: Record<string, { content?: Record<string, { schema: { $ref?: string; anyOf?: Array<{ $ref?: string }> } }>; headers?: Record<string, unknown> }> };
    const operations = Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => ({ path, method, op: op as Operation })));
    const problems: string[] = [];
    const missingSuccessSchema: string[] = [];
    for (const { path, method, op } of operations) {
      const where = `${method.toUpperCase()} ${path}`;
      const authenticated = op.security.length > 0;
      const required = [400, 500, ...(authenticated ? [401, 403, 429] : []), ...(/\{/.test(path) ? [404] : []), ...(['post', 'put', 'patch', 'delete'].includes(method) ? [409, 422] : [])];
      for (const status of required) {
        const response = op.responses[String(status)];
        const schema = response?.content?.['application/json']?.schema;
        // The Error schema, or either a route's own document for that status (POST /v1/events' outcomes) or the Error schema.
        const error = '#/components/schemas/Error';
        if (schema?.$ref !== error && !(schema?.anyOf?.length === 2 && schema.anyOf[1]!.$ref === error)) problems.push(`${where}: ${status} not documented with the Error schema`);
      }
      if (authenticated) {
        const roles = op.security[0]!.apiKey ?? [];
        if (!roles.includes('admin')) problems.push(`${where}: roles ${roles} in the security requirement`);
        if (JSON.stringify(op['x-fastgpu-roles']) !== JSON.stringify(roles)) problems.push(`${where}: x-fastgpu-roles differs from the security requirement`);
        if (!op.description?.includes(roles[0]!)) problems.push(`${where}: description does not name the roles`);
        if (!op.responses['429']?.headers?.['Retry-After']) problems.push(`${where}: 429 without Retry-After`);
      }
      const successes = Object.entries(op.responses).filter(([status]) => Number(status) < 300 && status !== '204');
      const withoutSchema = successes.filter(([, response]) => !Object.values(response.content ?? {}).some((media) => media.schema));
      // The marker says exactly which routes still lack a success schema: it is never silent.
      if (Boolean(withoutSchema.length) !== Boolean(op['x-fastgpu-response-schema-missing'])) problems.push(`${where}: x-fastgpu-response-schema-missing does not match its responses`);
      if (withoutSchema.length) missingSuccessSchema.push(where);
    }
    expect(problems).toEqual([]);
    // Every route declares its success schema (JSON or another media type): a new route without one fails here.
    expect(missingSuccessSchema).toEqual([]);
    // Paths are what a client calls: the literal colon of the dry-run route is not a parameter.
    expect(doc.paths['/v1/jobs:dry-run']?.post).toBeDefined();
    expect(Object.keys(doc.paths).filter((path) => /\{dry\}|::/.test(path))).toEqual([]);
    // Parameters read by name are documented too: the Idempotency-Key header, a plain tenantId query.
    const submit = doc.paths['/v1/jobs']!.post as Operation;
    expect(submit.parameters).toContainEqual(expect.objectContaining({ name: 'idempotency-key', in: 'header' }));
    // POST /v1/events answers 409 and 422 with its per-event outcomes (or, 422, the Error shape): both documented.
    const events = doc.paths['/v1/events']!.post as Operation;
    for (const status of ['409', '422']) {
      const schema = events.responses[status]!.content!['application/json']!.schema as { anyOf?: Array<{ $ref?: string; required?: string[] }> };
      expect(schema.anyOf?.map((s) => s.$ref ?? s.required)).toEqual([expect.arrayContaining(['results', 'accepted', 'conflicts']), '#/components/schemas/Error']);
    }
    const reviewQueue = doc.paths['/v1/billing/review-queue']!.get as Operation;
    expect(reviewQueue.parameters).toContainEqual(expect.objectContaining({ name: 'tenantId', in: 'query' }));
  });

  it('errors have the one documented shape on the wire', async () => {
    const unauthenticated = await fetch(`${started.url}/v1/jobs`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(unauthenticated.status).toBe(401);
    const body = await unauthenticated.json();
    const ajv = new Ajv2020({ strict: false });
    const doc = (await (await fetch(`${started.url}/docs/openapi.json`)).json()) as Doc;
    expect(ajv.validate(doc.components.schemas.Error!, body)).toBe(true);
    expect(body).toMatchObject({ error: { code: 'unauthenticated', field: 'Authorization' } });
  });

  it('serves an HTML index at /docs', async () => {
    const response = await fetch(`${started.url}/docs`);
    expect(response.headers.get('content-type')).toMatch(/text\/html/);
    const html = await response.text();
    expect(html).toContain('/docs/openapi.json');
    expect(html).toContain('<code>/v1/jobs/{jobId}</code>');
  });

  it('rejects what the validator should reject (the check is not vacuous)', async () => {
    const broken = buildOpenApiDocument([{ method: 'get', path: '/v1/things/:id', controller: 'ThingsController', handler: 'get', successStatus: 200, authenticated: false }], { title: 't', version: '1' });
    expect(validateDocument(broken)).toEqual([]);
    const tampered = structuredClone(broken) as unknown as { paths: Record<string, { get: { parameters: unknown[]; responses: Record<string, unknown> } }> };
    tampered.paths['/v1/things/{id}']!.get.parameters = [];
    tampered.paths['/v1/things/{id}']!.get.responses['200'] = {};
    const problems = validateDocument(tampered);
    expect(problems.some((p) => /description/.test(p))).toBe(true);
    expect(problems.some((p) => /do not match the template/.test(p))).toBe(true);
    expect(openApiPath('v1/jobs/:jobId/')).toEqual({ path: '/v1/jobs/{jobId}', parameters: ['jobId'] });
    // A route without a success schema is marked; one with a schema, another media type, or no success at all is not.
    const marked = (doc: { paths: Record<string, Record<string, unknown>> }) =>
      Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).filter(([, op]) => (op as Record<string, unknown>)['x-fastgpu-response-schema-missing'] === true).map(([method]) => `${method} ${path}`));
    const route = { controller: 'ThingsController', successStatus: 200, authenticated: false } as const;
    const routes = buildOpenApiDocument(
      [
        { ...route, method: 'get', path: '/v1/bare', handler: 'bare', doc: { summary: 'no success schema' } },
        { ...route, method: 'get', path: '/v1/json', handler: 'json', doc: { summary: 'JSON', response: z.object({ ok: z.boolean() }) } },
        { ...route, method: 'get', path: '/v1/csv', handler: 'csv', doc: { summary: 'CSV only', media: ['text/csv'] } },
        { ...route, method: 'patch', path: '/v1/never', handler: 'never', doc: { summary: 'never succeeds', success: {} } },
      ],
      { title: 't', version: '1' },
    );
    expect(marked(routes)).toEqual(['get /v1/bare']);
    expect(marked(broken)).toEqual(['get /v1/things/{id}']);
    const noInfo = structuredClone(broken) as unknown as Record<string, unknown>;
    delete noInfo.info;
    return new Validator().validate(noInfo as never).then((result) => expect(result.valid).toBe(false));
  });
});
