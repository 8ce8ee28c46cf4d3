/**
 * Proves the review decision decider as given (the tenant's billing subject) / when (bill a review
 * item onto an invoice, dismiss it) / then (the event decided, or the refusal with its status): an
 * open usage item is billed onto an open draft of its tenant or dismissed, under the item's own id;
 * one decision per item: the same decision again decides nothing, whether the ledger applied it
 * already or it is only on the subject, and another decision is refused 409 either way; an item
 * that is not usage is refused 409, and billing onto an invoice that is not an open draft 422.
 */
import { describe, expect, it } from 'vitest';
import { makeEvent, subjectFor, topology, type DomainEvent } from '@fastgpu/contracts';
import { spec, type BuildEvent } from '@fastgpu/eventsourcing';
import { reviewDecisionDecider, type ReviewDecisionCommand, type ReviewItemFacts } from './review-decision.decider';
import { refusalOf } from '../invoices/refusal.testing';

const topo = topology('spec');
const build: BuildEvent = (type, data, meta) => makeEvent(type, data, { ...meta, source: 'billing' }, subjectFor(topo, type, data));
const decider = reviewDecisionDecider(build);
const at = '2026-11-05T10:00:00.000Z';
const who = { actor: 'finance-key', reason: 'customer confirmed the usage' };
const decisionId = '0190d000-0000-7000-8000-000000000001';
const meta = { id: decisionId, time: at, tenantId: 'acme', correlationId: decisionId };
const open: ReviewItemFacts = { kind: 'late-usage', tenantId: 'acme', resolution: null, resolvedInvoiceId: null };

const common = (item: ReviewItemFacts) => ({ eventId: decisionId, usageEventId: 'usage-1', piece: 0, item, at, ...who });
const bill = (item: ReviewItemFacts = open, invoiceId = 'inv-1', invoiceOpen = true): ReviewDecisionCommand => ({ kind: 'bill', ...common(item), invoiceId, invoiceOpen });
const dismiss = (item: ReviewItemFacts = open): ReviewDecisionCommand => ({ kind: 'dismiss', ...common(item) });
const reviewItem = { tenantId: 'acme', usageEventId: 'usage-1', piece: 0, ...who };
const billed = build('LateUsageBilled', { ...reviewItem, invoiceId: 'inv-1', billedAt: at }, meta);
const dismissed = build('LateUsageDismissed', { ...reviewItem, dismissedAt: at }, meta);

const refused = (given: readonly DomainEvent[], command: ReviewDecisionCommand) => refusalOf(decider, given, command);

describe('review decision decider', () => {
  it('bills an open usage item onto an open draft, or dismisses it, under the item id', () => {
    spec(decider).given([]).when(bill()).then([billed]);
    spec(decider).given([]).when(dismiss({ ...open, kind: 'usage' })).then([dismissed]);
  });

  it('decides nothing for the same decision again: applied by the ledger, or only on the subject', () => {
    spec(decider).given([billed]).when(bill({ ...open, resolution: 'billed', resolvedInvoiceId: 'inv-1' })).then([]);
    spec(decider).given([dismissed]).when(dismiss({ ...open, resolution: 'dismissed' })).then([]);
    spec(decider).given([billed]).when(bill()).then([]);
    spec(decider).given([dismissed]).when(dismiss()).then([]);
  });

  it('refuses another decision on a decided item, applied by the ledger or only on the subject', () => {
    expect(refused([billed], dismiss({ ...open, resolution: 'billed', resolvedInvoiceId: 'inv-1' }))).toEqual([409, 'review_item_decided']);
    expect(refused([billed], bill({ ...open, resolution: 'billed', resolvedInvoiceId: 'inv-1' }, 'inv-2'))).toEqual([409, 'review_item_decided']);
    expect(refused([billed], dismiss())).toEqual([409, 'review_item_decided']);
    expect(refused([dismissed], bill())).toEqual([409, 'review_item_decided']);
    expect(refused([billed], bill(open, 'inv-2'))).toEqual([409, 'review_item_decided']);
  });

  it('refuses an item that is not usage, and billing onto an invoice that is not an open draft', () => {
    expect(refused([], dismiss({ ...open, kind: 'duplicate' }))).toEqual([409, 'not_usage']);
    expect(refused([], bill(open, 'inv-9', false))).toEqual([422, 'invoice_not_open']);
  });
});
