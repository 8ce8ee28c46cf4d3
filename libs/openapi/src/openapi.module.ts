import { Controller, Get, Header, Inject, Module } from '@nestjs/common';
import { DiscoveryModule, DiscoveryService, MetadataScanner } from '@nestjs/core';
import { z } from 'zod';
import { ApiDoc } from '@fastgpu/http';
import { buildOpenApiDocument, type OpenApiDocument } from './document';
import { discoverRoutes, discoverWebhooks } from './routes';

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** `GET /docs/openapi.json` (the OpenAPI 3.1 document) and `GET /docs` (a plain HTML index of it). */
@Controller('docs')
export class OpenApiController {
  private document?: OpenApiDocument;

  constructor(@Inject(DiscoveryService) private readonly discovery: DiscoveryService) {}

  /** Built on first request, when every module's routes are registered. */
  openApiDocument(): OpenApiDocument {
    this.document ??= buildOpenApiDocument(discoverRoutes(this.discovery, new MetadataScanner()), {
      title: 'FastGPU API',
      version: '1',
      description:
        'GPU jobs, leases, usage, invoices and SLA reports. Every error has the shape { error: { code, message, field } } (#/components/schemas/Error). ' +
        'Authentication: an API key as a bearer token; each operation lists the roles its key must have in its security requirement (x-fastgpu-roles). ' +
        'Rate limits per key and per tenant answer 429 with Retry-After.',
    }, discoverWebhooks(this.discovery));
    return this.document;
  }

  @Get('openapi.json')
  @ApiDoc({ summary: 'This OpenAPI 3.1 document', response: z.looseObject({ openapi: z.string(), info: z.object({ title: z.string(), version: z.string(), description: z.string().optional() }), paths: z.record(z.string(), z.unknown()) }), tags: ['docs'] })
  json(): OpenApiDocument {
    return this.openApiDocument();
  }

  @Get()
  @Header('content-type', 'text/html; charset=utf-8')
  @ApiDoc({ summary: 'An HTML index of the routes', media: ['text/html'], tags: ['docs'] })
  html(): string {
    const doc = this.openApiDocument();
    const rows = Object.entries(doc.paths)
      .flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ path, method, op: op as { summary?: string; security?: unknown[] } })))
      .map(({ path, method, op }) => `<tr><td><code>${method.toUpperCase()}</code></td><td><code>${escapeHtml(path)}</code></td><td>${escapeHtml(op.summary ?? '')}</td><td>${op.security?.length ? 'API key' : 'none'}</td></tr>`)
      .join('\n');
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(doc.info.title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem}table{border-collapse:collapse}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left}</style></head>
<body><h1>${escapeHtml(doc.info.title)}</h1>
<p>${escapeHtml(doc.info.description ?? '')}</p>
<p>Machine-readable: <a href="/docs/openapi.json">/docs/openapi.json</a> (OpenAPI ${doc.openapi}). Errors: <code>{ "error": { "code", "message", "field" } }</code>.</p>
<table><thead><tr><th>Method</th><th>Path</th><th>Summary</th><th>Auth</th></tr></thead><tbody>
${rows}
</tbody></table></body></html>`;
  }
}

@Module({ imports: [DiscoveryModule], controllers: [OpenApiController] })
export class OpenApiModule {}
