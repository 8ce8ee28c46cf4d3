/**
 * Proves that every string of every event schema is storable text: walking each payload schema
 * (nested objects, arrays, record keys and values included), every string is checked by the
 * shared text rule (text.ts) or by a stricter pattern (ids, instants, periods, decimals). For
 * every text field of every event type: a value with U+0000 can be neither built (`makeEvent`
 * throws with the field) nor decoded (`decodeEvent` gives a dead-letter reason naming the field);
 * other control characters and lone surrogates cannot be built either, while stored events that
 * hold them (storable, so possibly applied by a projection before the rule existed) still decode
 * (docs/adr/0004-storable-event-text.md). Node commands follow the same rule.
 */
import { describe, expect, it } from 'vitest';
import { decodeEvent, encodeEvent, makeEvent, type DomainEvent } from './codec';
import { eventCatalogue, eventTypes, STORABLE_TEXT_PATTERN, storedEventSchemas, type EventType } from './events';
import { NodeCommand } from './node-protocol';
import { MULTI_LINE_TEXT_PATTERN, SINGLE_LINE_TEXT_PATTERN } from './text';

type Def = { type: string; [key: string]: unknown };
type Schema = { _zod: { def: Def; traits: Set<string> } };
const asSchema = (schema: unknown) => schema as Schema;

/** Patterns stricter than the text rule: ASCII-only tokens, instants, periods, decimals, tax rates. */
const stricterPatterns = new Set(['^[A-Za-z0-9_-]+$', '^\\d{4}-\\d{2}$', '^\\d+(\\.\\d+)?$', '^(0(\\.\\d+)?|1(\\.0+)?)$']);

function stringPatterns(schema: Schema): RegExp[] {
  const checks = ((schema._zod.def.checks as Schema[] | undefined) ?? []).map((check) => check._zod.def);
  const own = schema._zod.traits.has('$ZodCheck') ? [schema._zod.def] : [];
  return [...own, ...checks].filter((check) => check.check === 'string_format').map((check) => check.pattern as RegExp);
}

/** Every string node of a schema with its path. */
function strings(schema: Schema, path: string, out: Array<{ path: string; schema: Schema }> = []): Array<{ path: string; schema: Schema }> {
  const def = schema._zod.def;
  switch (def.type) {
    case 'string':
      out.push({ path, schema });
      break;
    case 'optional':
    case 'nullable':
    case 'default':
      strings(def.innerType as Schema, path, out);
      break;
    case 'array':
      strings(def.element as Schema, `${path}[]`, out);
      break;
    case 'record':
      strings(def.keyType as Schema, `${path}{key}`, out);
      strings(def.valueType as Schema, `${path}{}`, out);
      break;
    case 'object':
      for (const [key, field] of Object.entries(def.shape as Record<string, Schema>)) strings(field, path ? `${path}.${key}` : key, out);
      break;
    default:
      break;
  }
  return out;
}

/** A valid payload for each type, from the catalogue's own tests' vocabulary. */
const instant = '2026-11-01T00:00:00.000Z';
const report = { jobId: 'j1', tenantId: 'acme', subtaskId: 's1', attempt: 1, nodeId: 'n1', leaseEpoch: 1 };
const audit = { actor: 'finance-1', reason: 'agreed with the customer' };
const validData: { [K in EventType]: Record<string, unknown> } = {
  TenantCreated: { tenantId: 'acme', name: 'Acme', billingTimeZone: 'Europe/Paris', currency: 'EUR', createdAt: instant },
  ApiKeyIssued: { keyId: 'k1', tenantId: 'acme', role: 'tenant', secretHash: 'a'.repeat(64), label: 'ci', issuedAt: instant },
  ApiKeyRevoked: { keyId: 'k1', tenantId: 'acme', revokedAt: instant, reason: 'leaked' },
  JobSubmitted: { jobId: 'j1', tenantId: 'acme', projectId: 'p1', name: 'train', gpuModels: ['H100'], gpusPerSubtask: 1, subtaskCount: 1, runtimeMs: 1000, priorityClass: 'standard', priority: 1, preemptible: false, gang: true, gangTopologyKey: 'nvlink', capacityType: 'on-demand', idempotencyKey: 'key-1', workload: { command: ['python3', 'train.py'], shell: false, env: { EPOCHS: '3' }, secrets: [{ env: 'HF_TOKEN', secret: 'hf' }], workingDirectory: 'src', timeoutMs: 1000, inputs: ['a.csv'], resultPath: 'out.json', resultBytesMax: 1024, aggregate: 'jsonl' }, submittedAt: instant },
  SubtaskCreated: { jobId: 'j1', tenantId: 'acme', subtaskId: 's1', index: 0, gpus: 1, gpuModels: ['H100'], runtimeMs: 1000 },
  JobCancelRequested: { jobId: 'j1', tenantId: 'acme', requestedAt: instant, reason: 'no longer needed' },
  JobResultsAggregated: { jobId: 'j1', tenantId: 'acme', rule: 'concat', outcome: 'failed', subtaskCount: 2, reason: 'result of sub-task 1 expired', aggregatedAt: instant },
  LeaseRequested: { leaseId: 'l1', tenantId: 'acme', projectId: 'p1', gpuModels: ['H100'], gpus: 1, capacityType: 'on-demand', priorityClass: 'standard', requestedAt: instant },
  LeaseReleaseRequested: { leaseId: 'l1', tenantId: 'acme', requestedAt: instant },
  SubtaskPlaced: { ...report, projectId: 'p1', gpuModel: 'H100', gpus: 1, gpuIndices: [0], capacityType: 'on-demand', runtimeMs: 1000, placedAt: instant },
  SubtaskPreempted: { ...report, reason: 'higher class', preemptedAt: instant },
  SubtaskRequeued: { jobId: 'j1', tenantId: 'acme', subtaskId: 's1', previousAttempt: 1, reason: 'node lost', requeuedAt: instant },
  SubtaskAbandoned: { jobId: 'j1', tenantId: 'acme', subtaskId: 's1', attempt: 3, reason: 'attempts exhausted', abandonedAt: instant },
  JobCompleted: { jobId: 'j1', tenantId: 'acme', projectId: 'p1', outcome: 'failed', reason: 'exit 1', subtasksSucceeded: 0, subtasksFailed: 1, subtasksCancelled: 0, gpuMsObserved: 1000, completedAt: instant },
  LeaseGranted: { leaseId: 'l1', tenantId: 'acme', projectId: 'p1', nodeId: 'n1', gpuModel: 'H100', gpus: 1, gpuIndices: [0], leaseEpoch: 1, capacityType: 'on-demand', grantedAt: instant },
  LeaseReleased: { leaseId: 'l1', tenantId: 'acme', nodeId: 'n1', leaseEpoch: 1, reason: 'released', releasedAt: instant },
  NodeRegistered: { nodeId: 'n1', gpuModel: 'H100', gpuCount: 8, gpuMemoryGb: 80, labels: { zone: 'eu-1' }, agentEpoch: 1, registeredAt: instant },
  SubtaskStarted: { ...report, startedAt: instant },
  SubtaskCompleted: { ...report, exitCode: 0, endedAt: instant },
  SubtaskFailed: { ...report, exitCode: 1, fault: 'user', reason: 'exit 1', endedAt: instant },
  NodeLost: { nodeId: 'n1', lastHeartbeatAt: instant, detectedAt: instant, reason: 'silent' },
  NodeRecovered: { nodeId: 'n1', agentEpoch: 2, recoveredAt: instant },
  NodeDrained: { nodeId: 'n1', reason: 'ECC errors', drainedAt: instant, automatic: true },
  NodeUndrained: { nodeId: 'n1', undrainedAt: instant },
  SchedulingPolicySet: { policy: { defaultWeight: 1, borrowing: true, tenants: { acme: { quotas: { H100: { nominal: 8 } } } } }, setAt: instant, actor: 'admin', reason: 'quarterly review' },
  ReportRejected: { nodeId: 'n1', subtaskId: 's1', reportType: 'SubtaskCompleted', reason: 'stale epoch', rejectedAt: instant },
  SlaCreditIssued: { creditId: 'c1', tenantId: 'acme', period: '2026-11', metric: 'gpu-availability', measured: '0.99', target: '0.995', creditPercent: 10, reportHash: 'abc', windowEndSequence: 10, issuedAt: instant },
  UsageRecorded: { usageId: 'u1', tenantId: 'acme', projectId: 'p1', gpuModel: 'H100', capacityType: 'on-demand', gpus: 1, startAt: instant, endAt: instant, gpuMs: 0, interrupted: false, sourceSequences: [1] },
  ExternalAllocationStarted: { allocationId: 'a1', tenantId: 'acme', projectId: 'p1', gpuModel: 'H100', gpus: 1, capacityType: 'on-demand', startedAt: instant },
  ExternalAllocationStopped: { allocationId: 'a1', tenantId: 'acme', stoppedAt: instant },
  ExternalAllocationReportedLate: { allocationId: 'a1', tenantId: 'acme', report: 'started', projectId: 'p1', gpuModel: 'H100', gpus: 1, capacityType: 'on-demand', at: instant, receivedAt: instant },
  LateUsageRecorded: { usageId: 'u1', tenantId: 'acme', projectId: 'p1', allocationId: 'a1', gpuModel: 'H100', capacityType: 'on-demand', gpus: 1, startAt: instant, endAt: instant, gpuMs: 0, reportedLateAt: instant, sourceSequences: [1] },
  PriceBookPublished: { priceBookId: 'b1', version: 1, currency: 'USD', effectiveFrom: instant, prices: [{ gpuModel: 'H100', capacityType: 'on-demand', pricePerGpuHour: '2.5' }], publishedBy: 'admin', publishedAt: instant },
  InvoiceFinalized: { invoiceId: 'i1', tenantId: 'acme', period: '2026-11', number: 'FG-000001', total: '12.50', currency: 'USD', cutoffSequence: 10, priceBookVersion: 1, sha256: 'b'.repeat(64), ...audit, finalizedAt: instant },
  InvoicePaid: { invoiceId: 'i1', tenantId: 'acme', amount: '12.50', currency: 'USD', paymentReference: 'wire 42', paidAt: instant, ...audit },
  InvoiceVoided: { invoiceId: 'i1', tenantId: 'acme', number: 'FG-000001', voidedAt: instant, ...audit },
  CreditNoteIssued: { creditNoteId: 'cn1', invoiceId: 'i1', tenantId: 'acme', number: 'CN-000001', amount: '1', currency: 'USD', issuedAt: instant, ...audit },
  CreditGranted: { grantId: 'g1', tenantId: 'acme', amount: '100', currency: 'USD', priority: 1, expiresAt: null, grantedAt: instant, ...audit },
  TaxRatesSet: { tenantId: 'acme', rates: [{ name: 'VAT', rate: '0.2' }], effectiveAt: instant, ...audit },
  BillingPeriodClosed: { tenantId: 'acme', period: '2026-11', closedAt: instant, ...audit },
  InvoiceDraftDeleted: { invoiceId: 'i1', tenantId: 'acme', period: '2026-11', usage: 'move', replacementInvoiceId: 'i2', deletedAt: instant, ...audit },
  InvoiceReissued: { invoiceId: 'i1', tenantId: 'acme', period: '2026-11', number: 'FGPU-000001', replacementInvoiceId: 'i2', reissuedAt: instant, ...audit },
  LateUsageBilled: { tenantId: 'acme', usageEventId: 'u1', piece: 0, invoiceId: 'i1', billedAt: instant, ...audit },
  LateUsageDismissed: { tenantId: 'acme', usageEventId: 'u1', piece: 0, dismissedAt: instant, ...audit },
  TenantBillingProfileSet: { tenantId: 'acme', legalName: 'Acme GmbH', addressLines: ['Hauptstraße 1', '10115 Berlin'], country: 'DE', taxId: 'DE123456789', setAt: instant, ...audit },
};

/** The text fields of a valid payload with their values, as [path to set, current value]: nested ones too. */
interface Slot {
  path: string;
  /** The payload with `value` at the path, padded with "a" or cut (by code points) to the field's bounds. */
  set(value: string): Record<string, unknown>;
}
function fit(value: string, schema: Schema): string {
  const checks = ((schema._zod.def.checks as Schema[] | undefined) ?? []).map((check) => check._zod.def);
  const min = Number(checks.find((c) => c.check === 'min_length')?.minimum ?? 0);
  const max = Number(checks.find((c) => c.check === 'max_length')?.maximum ?? Infinity);
  // Cut by UTF-16 unit so a lone surrogate stays a lone surrogate; the test values are short and mostly BMP.
  const points = [...value];
  const kept = points.length > max ? points.slice(points.length - max) : points;
  return 'a'.repeat(Math.max(0, min - kept.length)) + kept.join('');
}
function textSlots(data: Record<string, unknown>, type: EventType): Slot[] {
  const fields = strings(asSchema(eventCatalogue[type].schema), '').filter(({ schema }) => stringPatterns(schema).some((p) => p === SINGLE_LINE_TEXT_PATTERN || p === MULTI_LINE_TEXT_PATTERN));
  const slots: Slot[] = [];
  for (const { path, schema } of fields) {
    const steps = path.split('.');
    // Set the value at the path when the valid payload has something there (arrays: the first element; records: a value and a key).
    const setAt = (value: string, keyMode: boolean): Record<string, unknown> | undefined => {
      const copy = structuredClone(data);
      let node: unknown = copy;
      for (let i = 0; i < steps.length; i++) {
        const step = steps[i]!;
        const last = i === steps.length - 1;
        const match = /^(\w+)(\[\]|\{key\}|\{\})?$/.exec(step);
        if (!match || typeof node !== 'object' || node === null) return undefined;
        const [, name, suffix] = match;
        const holder = node as Record<string, unknown>;
        if (!(name! in holder)) return undefined;
        if (suffix === '[]') {
          const array = holder[name!] as unknown[];
          if (!Array.isArray(array) || !array.length) return undefined;
          if (last) array[0] = value;
          else node = array[0];
        } else if (suffix === '{key}' || suffix === '{}') {
          const record = holder[name!] as Record<string, unknown>;
          const key = Object.keys(record)[0];
          if (key === undefined) return undefined;
          if (last && (suffix === '{key}' || keyMode)) {
            record[value] = record[key];
            delete record[key];
          } else if (last) record[key] = value;
          else node = record[key];
        } else if (last) holder[name!] = value;
        else node = holder[name!];
      }
      return copy;
    };
    if (setAt('x', false)) slots.push({ path, set: (value) => setAt(fit(value, schema), false)! });
  }
  return slots;
}

const meta = { id: '0190a000-0000-7000-8000-000000000001', source: 'test', time: instant, tenantId: 'acme', correlationId: 'c1' };
const envelopeAround = (type: EventType, data: Record<string, unknown>): DomainEvent => ({ ...makeEvent(type, validData[type] as never, meta, 'fastgpu.evt.test.x.1'), data } as unknown as DomainEvent);

describe('every string of every event schema is storable text', () => {
  it.each(eventTypes)('%s: each string is under the text rule or a stricter pattern, as built and as read', (type) => {
    for (const [rule, schema, textPatterns] of [
      ['built', eventCatalogue[type].schema, [SINGLE_LINE_TEXT_PATTERN, MULTI_LINE_TEXT_PATTERN]],
      ['read', storedEventSchemas[type], [STORABLE_TEXT_PATTERN]],
    ] as const) {
      for (const { path, schema: field } of strings(asSchema(schema), '')) {
        const patterns = stringPatterns(field);
        const isDateTime = field._zod.def.format === 'datetime' || ((field._zod.def.checks as Schema[] | undefined) ?? []).some((c) => c._zod.def.format === 'datetime');
        const ok = isDateTime || patterns.some((p) => (textPatterns as readonly RegExp[]).includes(p) || stricterPatterns.has(p.source));
        expect(ok, `${type}.${path} (${rule}) has no storable-text rule`).toBe(true);
      }
    }
  });
});

describe('U+0000 can be neither built nor decoded; other control characters cannot be built', () => {
  it.each(eventTypes)('%s', (type) => {
    const data = validData[type];
    expect(() => makeEvent(type, data as never, meta, 'fastgpu.evt.test.x.1')).not.toThrow();
    const slots = textSlots(data, type);
    for (const slot of slots) {
      const field = slot.path.replace(/\[\]|\{key\}|\{\}/g, '');
      for (const bad of ['a\u0000b', '\u0000']) {
        const poisoned = slot.set(bad);
        expect(() => makeEvent(type, poisoned as never, meta, 'fastgpu.evt.test.x.1'), `${type}.${slot.path} built with U+0000`).toThrow(new RegExp(`invalid ${type} data: ${field.split('.')[0]}`));
        const decoded = decodeEvent(encodeEvent(envelopeAround(type, poisoned)));
        expect(decoded.ok, `${type}.${slot.path} decoded with U+0000`).toBe(false);
        // zod names a bad record key without its check's message.
        expect((decoded as { reason: string }).reason).toMatch(slot.path.endsWith('{key}') ? new RegExp(`invalid ${type} data: ${field.split('.')[0]}`) : /U\+0000/);
      }
      for (const unbuildable of ['a\u0001b', '\u007f', '\u0085', 'a\ud800', '\udc00']) {
        expect(() => makeEvent(type, slot.set(unbuildable) as never, meta, 'fastgpu.evt.test.x.1'), `${type}.${slot.path} built with ${JSON.stringify(unbuildable)}`).toThrow(/invalid/);
        // Storable, so a stored event holding it may have been applied: it still decodes.
        expect(decodeEvent(encodeEvent(envelopeAround(type, slot.set(unbuildable)))).ok, `${type}.${slot.path} stored with ${JSON.stringify(unbuildable)}`).toBe(true);
      }
      for (const fine of ['Zürich 東京 😀', '\u2028', '\ufeff']) {
        expect(() => makeEvent(type, slot.set(fine) as never, meta, 'fastgpu.evt.test.x.1'), `${type}.${slot.path} refused ${JSON.stringify(fine)}`).not.toThrow();
      }
    }
  });

  it('covers the text fields the issue found wedging projections', () => {
    const covered = new Set(eventTypes.flatMap((type) => textSlots(validData[type], type).map((slot) => `${type}.${slot.path}`)));
    for (const field of ['JobSubmitted.name', 'TenantCreated.name', 'NodeDrained.reason', 'PriceBookPublished.prices[].gpuModel', 'NodeRegistered.labels{}', 'NodeRegistered.labels{key}', 'TenantCreated.currency', 'TenantCreated.billingTimeZone', 'JobSubmitted.gangTopologyKey']) {
      expect(covered.has(field), field).toBe(true);
    }
  });

  it('node commands refuse control characters in their reasons (tab and line breaks allowed)', () => {
    const stop = { kind: 'StopSubtask', commandId: 'c1', subtaskId: 's1', attempt: 1, leaseEpoch: 1, issuedAt: instant };
    expect(NodeCommand.safeParse({ ...stop, reason: 'preempted\nby j2' }).success).toBe(true);
    expect(NodeCommand.safeParse({ ...stop, reason: 'pre\u0000empted' }).success).toBe(false);
    expect(NodeCommand.safeParse({ ...stop, reason: '\ud800' }).success).toBe(false);
  });
});
