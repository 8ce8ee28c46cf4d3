import { z } from 'zod';
import type { ApiDocMetadata } from '@fastgpu/http';

/**
 * Builds an OpenAPI 3.1 document from route descriptors (read from Nest's route metadata) and
 * the `@ApiDoc` zod schemas, converted with zod 4's `z.toJSONSchema` (JSON Schema 2020-12, the
 * dialect of OpenAPI 3.1). Pure: the same routes always give the same document.
 */
export interface RouteDescriptor {
  method: 'get' | 'post' | 'put' | 'delete' | 'patch' | 'options' | 'head';
  /** Express-style path as Nest declares it, e.g. `/v1/jobs/:jobId`. */
  path: string;
  controller: string;
  handler: string;
  doc?: ApiDocMetadata;
  /** Status Nest answers on success (`@HttpCode`, else 201 for POST and 200 otherwise). */
  successStatus: number;
  authenticated: boolean;
  roles?: string[];
  /** Names the handler reads with `@Query('name')` (documented when the query schema does not name them). */
  queryNames?: string[];
  /** Request headers the handler reads with `@Headers('name')`. */
  headerNames?: string[];
}

/**
 * A webhook the app sends to its integrators: the document lists it under the top-level
 * `webhooks` of OpenAPI 3.1, as the request the app makes (a POST with this body).
 */
export interface WebhookDescriptor {
  /** Its type, the key under `webhooks` (e.g. `invoice.paid`). */
  name: string;
  summary: string;
  body: z.ZodType;
  /** Request headers on every delivery, with what they mean. */
  headers?: Record<string, string>;
  tags?: string[];
}

export interface OpenApiInfo {
  title: string;
  version: string;
  description?: string;
}

type JsonSchema = Record<string, unknown>;
export type OpenApiDocument = {
  openapi: '3.1.0';
  info: OpenApiInfo;
  jsonSchemaDialect: string;
  paths: Record<string, Record<string, unknown>>;
  /** What the app sends (OpenAPI 3.1): present when some module declares webhooks. */
  webhooks?: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, JsonSchema>; securitySchemes: Record<string, unknown>; responses: Record<string, unknown> };
};

/** The one error shape every route answers with (libs/http errors.ts). */
export const errorSchema: JsonSchema = {
  type: 'object',
  required: ['error'],
  additionalProperties: false,
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      additionalProperties: false,
      properties: {
        code: { type: 'string', description: 'Stable machine-readable code, e.g. invalid_request, unprocessable, not_found, unauthenticated' },
        message: { type: 'string', description: 'Human-readable reason' },
        field: { type: 'string', description: 'The request field at fault (dotted path, or a header name)' },
      },
    },
  },
};

const STATUS_REASONS: Record<number, string> = {
  400: 'Malformed request: a field, parameter or header that does not parse (`field` names it), a query parameter given twice, a malformed URL or JSON body',
  401: 'Missing, unknown or revoked API key',
  403: 'The key role may not call this endpoint',
  404: "Not found (another tenant's object answers the same)",
  409: 'Conflict: changed concurrently, or an Idempotency-Key reused with another request',
  413: 'Request body too large',
  415: 'Unsupported Content-Type (JSON only)',
  422: 'Well-formed but not acceptable (`field` names it)',
  429: 'Rate limit of the API key or its tenant reached; retry after `Retry-After` seconds',
  500: 'Internal error (details only in the server log)',
};

/** What the API key guard admits when a route names no roles (libs/auth). */
const DEFAULT_ROLES = ['tenant'];
const WRITE_METHODS = new Set<RouteDescriptor['method']>(['post', 'put', 'patch', 'delete']);
const BODY_METHODS = new Set<RouteDescriptor['method']>(['post', 'put', 'patch']);

function errorResponse(status: number, description: string, otherBody?: z.ZodType): Record<string, unknown> {
  const error = { $ref: '#/components/schemas/Error' };
  return {
    description,
    ...(status === 429 ? { headers: { 'Retry-After': { description: 'Whole seconds to wait before retrying (at least 1)', schema: { type: 'integer', minimum: 1 } } } } : {}),
    // A route that answers some statuses with its own document (ApiDoc `errorBodies`): that document or the Error shape.
    content: { 'application/json': { schema: otherBody ? { anyOf: [toJsonSchema(otherBody, 'output'), error] } : error } },
  };
}

/** The error statuses a route can answer: every route 400 and 500; what its guard, input and method add; what it declares. */
function errorStatuses(route: RouteDescriptor, pathParams: string[], queryNames: string[]): number[] {
  const doc = route.doc;
  const statuses = new Set<number>([400, 500]);
  if (route.authenticated) for (const s of [401, 403, 429]) statuses.add(s);
  // Another tenant's object is a 404: routes that name one in the path or in `tenantId`.
  if (pathParams.length || queryNames.includes('tenantId')) statuses.add(404);
  if (WRITE_METHODS.has(route.method)) {
    statuses.add(409);
    statuses.add(422);
  }
  if (doc?.query) statuses.add(422);
  if (BODY_METHODS.has(route.method) && doc?.body) {
    statuses.add(413);
    statuses.add(415);
  }
  for (const status of Object.keys(doc?.errors ?? {})) if (Number(status) >= 400) statuses.add(Number(status));
  return [...statuses].sort((a, b) => a - b);
}

function mediaSchema(mediaType: string): JsonSchema {
  return /^(text\/|application\/(json|xml|csv))/.test(mediaType) ? { type: 'string', contentMediaType: mediaType } : { type: 'string', contentMediaType: mediaType, contentEncoding: 'binary' };
}

export function toJsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as JsonSchema;
  delete json.$schema;
  return json;
}

/**
 * `/v1/jobs/:jobId` → `/v1/jobs/{jobId}` and the path parameter names. `::` is a literal colon
 * in a Fastify route (`/v1/jobs::dry-run` serves `/v1/jobs:dry-run`), not a parameter.
 */
export function openApiPath(path: string): { path: string; parameters: string[] } {
  const parameters: string[] = [];
  const normalised = `/${path.replace(/^\/+|\/+$/g, '')}`.replace(/\/+/g, '/');
  const converted = normalised.replace(/::|:([A-Za-z0-9_]+)\??/g, (match, name: string | undefined) => {
    if (match === '::' || name === undefined) return ':';
    parameters.push(name);
    return `{${name}}`;
  });
  return { path: converted, parameters };
}

function operationId(route: RouteDescriptor): string {
  return `${route.controller.replace(/Controller$/, '')}_${route.handler}`;
}

/** A webhook as an OpenAPI 3.1 path item: the POST the app makes to the receiver. */
function webhookPathItem(webhook: WebhookDescriptor): Record<string, unknown> {
  const parameters = Object.entries(webhook.headers ?? {}).map(([name, description]) => ({ name, in: 'header', required: true, schema: { type: 'string' }, description }));
  return {
    post: {
      operationId: `webhook_${webhook.name.replace(/[^A-Za-z0-9]+/g, '_')}`,
      summary: webhook.summary,
      tags: webhook.tags ?? ['webhooks'],
      ...(parameters.length ? { parameters } : {}),
      requestBody: { required: true, content: { 'application/json': { schema: toJsonSchema(webhook.body, 'output') } } },
      responses: { '2XX': { description: 'Received: any 2xx answer ends the delivery' }, default: { description: 'Any other answer (or none) is retried with backoff' } },
    },
  };
}

export function buildOpenApiDocument(routes: RouteDescriptor[], info: OpenApiInfo, webhooks: readonly WebhookDescriptor[] = []): OpenApiDocument {
  const paths: OpenApiDocument['paths'] = {};
  const sorted = [...routes].sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
  const usedIds = new Set<string>();
  for (const route of sorted) {
    const { path, parameters: pathParams } = openApiPath(route.path);
    const doc = route.doc;
    const parameters: Array<Record<string, unknown>> = pathParams.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
    const queryNames: string[] = [];
    if (doc?.query) {
      const query = toJsonSchema(doc.query, 'input');
      const required = new Set((query.required as string[] | undefined) ?? []);
      for (const [name, schema] of Object.entries((query.properties as Record<string, JsonSchema> | undefined) ?? {})) {
        parameters.push({ name, in: 'query', required: required.has(name), schema });
        queryNames.push(name);
      }
    }
    for (const name of route.queryNames ?? []) {
      if (queryNames.includes(name)) continue;
      parameters.push({ name, in: 'query', required: false, schema: { type: 'string' } });
      queryNames.push(name);
    }
    for (const name of route.headerNames ?? []) {
      const described = Object.entries(doc?.headers ?? {}).find(([header]) => header.toLowerCase() === name.toLowerCase())?.[1];
      parameters.push({ name, in: 'header', required: false, schema: { type: 'string' }, ...(described ? { description: described } : {}) });
    }
    const responses: Record<string, unknown> = {};
    const content: Record<string, { schema: JsonSchema }> = {};
    if (doc?.response) content['application/json'] = { schema: toJsonSchema(doc.response, 'output') };
    for (const media of doc?.media ?? []) content[media] = { schema: mediaSchema(media) };
    let responseSchemaMissing = false;
    for (const [status, description] of Object.entries(doc?.success ?? { [route.successStatus]: doc?.summary ?? 'OK' })) {
      const noContent = status === '204' || status === '304';
      if (!noContent && !Object.keys(content).length) responseSchemaMissing = true;
      responses[status] = { description, ...(noContent || !Object.keys(content).length ? {} : { content }) };
    }
    for (const status of errorStatuses(route, pathParams, queryNames)) responses[String(status)] = errorResponse(status, doc?.errors?.[status] ?? STATUS_REASONS[status] ?? 'Error', doc?.errorBodies?.[status]);
    let id = operationId(route);
    for (let n = 2; usedIds.has(id); n++) id = `${operationId(route)}_${n}`;
    usedIds.add(id);
    const roles = route.authenticated ? [...new Set([...(route.roles ?? DEFAULT_ROLES), 'admin'])] : [];
    const operation: Record<string, unknown> = {
      operationId: id,
      summary: doc?.summary ?? `${route.controller}.${route.handler}`,
      ...(route.authenticated ? { description: `Roles: ${roles.join(', ')} (an admin key is always admitted).` } : { description: 'Public: no API key.' }),
      tags: doc?.tags ?? [route.controller.replace(/Controller$/, '').toLowerCase()],
      ...(parameters.length ? { parameters } : {}),
      ...(doc?.body ? { requestBody: { required: true, content: { 'application/json': { schema: toJsonSchema(doc.body, 'input') } } } } : {}),
      responses,
      // OpenAPI 3.1 lets a non-OAuth requirement list role names: the roles the key must have.
      security: route.authenticated ? [{ apiKey: roles }] : [],
      ...(route.authenticated ? { 'x-fastgpu-roles': roles } : {}),
      ...(doc ? {} : { 'x-fastgpu-undocumented': true }),
      ...(responseSchemaMissing ? { 'x-fastgpu-response-schema-missing': true } : {}),
    };
    (paths[path] ??= {})[route.method] = operation;
  }
  return {
    openapi: '3.1.0',
    info,
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths,
    ...(webhooks.length ? { webhooks: Object.fromEntries([...webhooks].sort((a, b) => a.name.localeCompare(b.name)).map((w) => [w.name, webhookPathItem(w)])) } : {}),
    components: {
      schemas: { Error: errorSchema },
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'A FastGPU API key (`Authorization: Bearer fgk_…`); the tenant comes from the key' } },
      responses: {},
    },
  };
}
