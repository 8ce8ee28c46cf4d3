import { RequestMethod, SetMetadata } from '@nestjs/common';
import { GUARDS_METADATA, HTTP_CODE_METADATA, METHOD_METADATA, PATH_METADATA, ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import type { DiscoveryService, MetadataScanner } from '@nestjs/core';
import { API_DOC, type ApiDocMetadata } from '@fastgpu/http';
import type { RouteDescriptor, WebhookDescriptor } from './document';

/** Routes each controller may declare at most: bounds the scan. */
const METHODS_PER_CONTROLLER_MAX = 500;
const ROLES_METADATA = 'fastgpu:roles';

const METHOD_NAMES: Partial<Record<RequestMethod, RouteDescriptor['method']>> = {
  [RequestMethod.GET]: 'get',
  [RequestMethod.POST]: 'post',
  [RequestMethod.PUT]: 'put',
  [RequestMethod.DELETE]: 'delete',
  [RequestMethod.PATCH]: 'patch',
  [RequestMethod.OPTIONS]: 'options',
  [RequestMethod.HEAD]: 'head',
};

function joinPath(...parts: string[]): string {
  return `/${parts.map((p) => p.replace(/^\/+|\/+$/g, '')).filter(Boolean).join('/')}`;
}
function asList(value: unknown): string[] {
  if (value === undefined) return ['/'];
  return Array.isArray(value) ? (value as string[]) : [String(value)];
}

/** Nest's `RouteParamtypes` for `@Query()` and `@Headers()` (the enum is not exported from the package root). */
const ROUTE_PARAM_QUERY = 4;
const ROUTE_PARAM_HEADERS = 6;

/** The names a handler reads with `@Query('name')` and `@Headers('name')`, from Nest's parameter metadata. */
function namedArguments(metatype: object, handler: string): { query: string[]; headers: string[] } {
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, metatype, handler) as Record<string, { data?: unknown }> | undefined) ?? {};
  const named = { query: [] as string[], headers: [] as string[] };
  for (const [key, arg] of Object.entries(args)) {
    const type = Number(key.split(':')[0]);
    if (typeof arg.data !== 'string' || !arg.data) continue;
    if (type === ROUTE_PARAM_QUERY) named.query.push(arg.data);
    if (type === ROUTE_PARAM_HEADERS && arg.data.toLowerCase() !== 'authorization') named.headers.push(arg.data);
  }
  return { query: named.query.sort(), headers: named.headers.sort() };
}

const WEBHOOKS_METADATA = 'fastgpu:openapi-webhooks';

/**
 * Declares, on the controller of a feature, the webhooks that feature sends, for the top-level
 * `webhooks` of the OpenAPI document (read like the routes, so a service not started declares none).
 */
export function ApiWebhooks(webhooks: readonly WebhookDescriptor[]): ClassDecorator {
  return SetMetadata(WEBHOOKS_METADATA, webhooks);
}

/** Every webhook declared with `@ApiWebhooks` on the app's controllers. */
export function discoverWebhooks(discovery: DiscoveryService): WebhookDescriptor[] {
  const webhooks: WebhookDescriptor[] = [];
  for (const wrapper of discovery.getControllers()) {
    if (!wrapper.metatype) continue;
    webhooks.push(...((Reflect.getMetadata(WEBHOOKS_METADATA, wrapper.metatype) as WebhookDescriptor[] | undefined) ?? []));
  }
  return webhooks;
}

/** Reads every HTTP route of the app from Nest's own metadata: the document cannot drift from the code. */
export function discoverRoutes(discovery: DiscoveryService, scanner: MetadataScanner): RouteDescriptor[] {
  const routes: RouteDescriptor[] = [];
  for (const wrapper of discovery.getControllers()) {
    const metatype = wrapper.metatype as (abstract new (...args: never[]) => unknown) | undefined;
    const instance = wrapper.instance as object | undefined;
    if (!metatype || !instance) continue;
    const prototype = Object.getPrototypeOf(instance) as Record<string, unknown>;
    const classGuards = (Reflect.getMetadata(GUARDS_METADATA, metatype) as unknown[] | undefined) ?? [];
    const classRoles = Reflect.getMetadata(ROLES_METADATA, metatype) as string[] | undefined;
    const names = scanner.getAllMethodNames(prototype).slice(0, METHODS_PER_CONTROLLER_MAX);
    for (const name of names) {
      const handler = prototype[name] as object;
      const requestMethod = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
      if (requestMethod === undefined) continue;
      const method = METHOD_NAMES[requestMethod];
      if (!method) continue;
      const guards = [...classGuards, ...((Reflect.getMetadata(GUARDS_METADATA, handler) as unknown[] | undefined) ?? [])];
      const doc = Reflect.getMetadata(API_DOC, handler) as ApiDocMetadata | undefined;
      const httpCode = Reflect.getMetadata(HTTP_CODE_METADATA, handler) as number | undefined;
      const roles = (Reflect.getMetadata(ROLES_METADATA, handler) as string[] | undefined) ?? classRoles;
      const named = namedArguments(metatype, name);
      for (const base of asList(Reflect.getMetadata(PATH_METADATA, metatype))) {
        for (const sub of asList(Reflect.getMetadata(PATH_METADATA, handler))) {
          routes.push({
            method,
            path: joinPath(base, sub),
            controller: metatype.name,
            handler: name,
            doc,
            successStatus: httpCode ?? (method === 'post' ? 201 : 200),
            authenticated: guards.some((g) => (typeof g === 'function' ? g.name : (g as object)?.constructor?.name) === 'ApiKeyGuard'),
            ...(roles ? { roles } : {}),
            ...(named.query.length ? { queryNames: named.query } : {}),
            ...(named.headers.length ? { headerNames: named.headers } : {}),
          });
        }
      }
    }
  }
  return routes;
}
