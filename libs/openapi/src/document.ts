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
  400: 'Malformed request: a field has the wrong type or is missing',
  401: 'Missing, unknown or revoked API key',
  403: 'The key role may not call this endpoint',
  404: 'Not found (another tenant\'s object answers the same)',
  409: 'Conflict',
  413: 'Request body too large',
  422: 'Well-formed but not acceptable',
  500: 'Internal error',
};

export function toJsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as JsonSchema;
  delete json.$schema;
  return json;
}

/** `/v1/jobs/:jobId` → `/v1/jobs/{jobId}` and the path parameter names. */
export function openApiPath(path: string): { path: string; parameters: string[] } {
  const parameters: string[] = [];
  const normalised = `/${path.replace(/^\/+|\/+$/g, '')}`.replace(/\/+/g, '/');
  const converted = normalised.replace(/:([A-Za-z0-9_]+)\??/g, (_m, name: string) => {
    parameters.push(name);
    return `{${name}}`;
  });
  return { path: converted, parameters };
}

function operationId(route: RouteDescriptor): string {
  return `${route.controller.replace(/Controller$/, '')}_${route.handler}`;
}

export function buildOpenApiDocument(routes: RouteDescriptor[], info: OpenApiInfo): OpenApiDocument {
  const paths: OpenApiDocument['paths'] = {};
  const sorted = [...routes].sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
  const usedIds = new Set<string>();
  for (const route of sorted) {
    const { path, parameters: pathParams } = openApiPath(route.path);
    const doc = route.doc;
    const parameters: Array<Record<string, unknown>> = pathParams.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
    if (doc?.query) {
      const query = toJsonSchema(doc.query, 'input');
      const required = new Set((query.required as string[] | undefined) ?? []);
      for (const [name, schema] of Object.entries((query.properties as Record<string, JsonSchema> | undefined) ?? {})) {
        parameters.push({ name, in: 'query', required: required.has(name), schema });
      }
    }
    const responses: Record<string, unknown> = {};
    const content = doc?.response ? { content: { 'application/json': { schema: toJsonSchema(doc.response, 'output') } } } : {};
    for (const [status, description] of Object.entries(doc?.success ?? { [route.successStatus]: doc?.summary ?? 'OK' })) responses[status] = { description, ...content };
    const errorStatuses = new Set<number>([...(route.authenticated ? [401, 403] : []), ...(doc?.body || doc?.query ? [400, 422] : []), ...(pathParams.length ? [404] : []), 500]);
    for (const status of Object.keys(doc?.errors ?? {})) errorStatuses.add(Number(status));
    for (const status of [...errorStatuses].sort()) {
      responses[String(status)] = { description: doc?.errors?.[status] ?? STATUS_REASONS[status] ?? 'Error', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
    }
    let id = operationId(route);
    for (let n = 2; usedIds.has(id); n++) id = `${operationId(route)}_${n}`;
    usedIds.add(id);
    const operation: Record<string, unknown> = {
      operationId: id,
      summary: doc?.summary ?? `${route.controller}.${route.handler}`,
      tags: doc?.tags ?? [route.controller.replace(/Controller$/, '').toLowerCase()],
      ...(parameters.length ? { parameters } : {}),
      ...(doc?.body ? { requestBody: { required: true, content: { 'application/json': { schema: toJsonSchema(doc.body, 'input') } } } } : {}),
      responses,
      ...(route.authenticated ? { security: [{ apiKey: [] }] } : { security: [] }),
      ...(route.roles?.length ? { 'x-fastgpu-roles': route.roles } : {}),
      ...(doc ? {} : { 'x-fastgpu-undocumented': true }),
    };
    (paths[path] ??= {})[route.method] = operation;
  }
  return {
    openapi: '3.1.0',
    info,
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths,
    components: {
      schemas: { Error: errorSchema },
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'A FastGPU API key (`Authorization: Bearer fgk_…`); the tenant comes from the key' } },
      responses: {},
    },
  };
}
