/**
 * The routes an app serves, as Fastify registered them, so that a request for a path that exists
 * under other methods answers 405 with `Allow` instead of 404 (Fastify's router answers 404 for
 * both). Fed by a Fastify `onRoute` hook (libs/platform).
 */
export class RouteTable {
  private readonly routes: Array<{ method: string; pattern: RegExp }> = [];

  add(method: string | readonly string[], url: string): void {
    const pattern = RouteTable.compile(url);
    for (const m of typeof method === 'string' ? [method] : method) this.routes.push({ method: m.toUpperCase(), pattern });
  }

  /** The methods registered for a concrete path, sorted; empty when no route has this path. */
  methodsFor(path: string): string[] {
    const methods = new Set<string>();
    for (const route of this.routes) if (route.pattern.test(path)) methods.add(route.method);
    return [...methods].sort();
  }

  /**
   * A Fastify URL pattern as a regular expression: `:name` is one path segment, `::` a literal
   * colon (`/v1/jobs::dry-run` serves `/v1/jobs:dry-run`), `*` the rest of the path.
   */
  static compile(url: string): RegExp {
    let source = '';
    for (let i = 0; i < url.length; i++) {
      const c = url[i]!;
      if (c === ':' && url[i + 1] === ':') {
        source += ':';
        i++;
      } else if (c === ':') {
        while (i + 1 < url.length && /[A-Za-z0-9_]/.test(url[i + 1]!)) i++;
        source += '[^/]+';
      } else if (c === '*') {
        source += '.*';
      } else {
        source += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
      }
    }
    return new RegExp(`^${source}/?$`);
  }
}
