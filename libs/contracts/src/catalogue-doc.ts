import { z } from 'zod';
import { eventCatalogue, eventTypes } from './events';
import { subjectFor, topology } from './subjects';

/**
 * Renders docs/event-catalogue.md from the schemas themselves, so the published catalogue
 * cannot drift from the code (a test compares the file with this output).
 */
const sampleIds: Record<string, string> = {};
function sampleSubject(type: (typeof eventTypes)[number]): string {
  const topo = topology('fastgpu');
  const placeholder = new Proxy(sampleIds, { get: (_, key) => `{${String(key)}}` });
  try {
    return subjectFor(topo, type, placeholder as never);
  } catch {
    return '(see subjects.ts)';
  }
}

export function renderEventCatalogue(): string {
  const lines = [
    '# Event catalogue',
    '',
    '_Generated from `libs/contracts/src/events.ts` by `npm run catalogue`; do not edit by hand._',
    '',
    'Every event travels in a CloudEvents 1.0 envelope (structured JSON): `specversion`, `id`',
    '(UUIDv7, also the `Nats-Msg-Id`), `source`, `type`, `subject`, `time`, `tenantid`, `traceparent`,',
    '`correlationid`, `causationid`, `schemaversion`, `data`. Headers repeat the type (`Ce-Type`),',
    'the schema version and the tenant. Published versions are never edited: a breaking change',
    'adds a version and an upcaster (`upcasters.ts`).',
    '',
    '| type | version | subject |',
    '| --- | --- | --- |',
    ...eventTypes.map((type) => `| \`${type}\` | ${eventCatalogue[type].version} | \`${sampleSubject(type)}\` |`),
    '',
  ];
  for (const type of eventTypes) {
    const schema = z.toJSONSchema(eventCatalogue[type].schema, { io: 'input', unrepresentable: 'any' }) as { properties?: Record<string, { type?: unknown; description?: string }>; required?: string[] };
    lines.push(`## ${type} (v${eventCatalogue[type].version})`, '', '| field | type | required |', '| --- | --- | --- |');
    for (const [field, spec] of Object.entries(schema.properties ?? {})) {
      const kind = Array.isArray(spec.type) ? spec.type.join(' | ') : String(spec.type ?? ((spec as { enum?: unknown[] }).enum ? 'enum' : (spec as { anyOf?: unknown }).anyOf ? 'union' : 'object'));
      const enumValues = (spec as { enum?: unknown[] }).enum;
      lines.push(`| \`${field}\` | ${kind}${enumValues ? ` (${enumValues.map((v) => `\`${String(v)}\``).join(', ')})` : ''} | ${schema.required?.includes(field) ? 'yes' : 'no'} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
