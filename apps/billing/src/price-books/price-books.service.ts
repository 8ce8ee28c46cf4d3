import { Inject, Injectable } from '@nestjs/common';
import { nameId, TIER_MODE_DEFAULT, type EventData, type TierMode } from '@fastgpu/contracts';
import { isWrongLastSequence, type EventPublisher } from '@fastgpu/messaging';
import { minorUnits, money, validateTiers, type PriceTier } from '@fastgpu/money';
import { publisherFor, RUNTIME, type Runtime } from '@fastgpu/runtime';
import { BillingLedger } from '../ledger/billing.ledger';
import { BillingRejection } from '../invoices/invoice.decider';

export interface PublishPriceBook {
  priceBookId: string;
  version?: number;
  currency: string;
  effectiveFrom: string;
  prices: Array<Omit<EventData<'PriceBookPublished'>['prices'][number], 'pricePerGpuHour'> & { pricePerGpuHour?: string; tierMode?: TierMode; tiers?: PriceTier[] }>;
}

type EventPrice = EventData<'PriceBookPublished'>['prices'][number];

/**
 * Price books: effective-dated, immutable versions published as `PriceBookPublished`. A version
 * is never replaced: publishing takes the next version number of the book, guarded by the
 * book subject's expected last sequence, so two concurrent publishers cannot both take it.
 */
@Injectable()
export class PriceBooksService {
  private readonly publisher: EventPublisher;

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(BillingLedger) private readonly ledger: BillingLedger,
  ) {
    this.publisher = publisherFor(runtime, 'billing');
  }

  async list() {
    await this.ledger.catchUp();
    const rows = await this.runtime.db.selectFrom('billing_price_books').selectAll().orderBy('price_book_id').orderBy('version').execute();
    return rows.map((r) => ({
      priceBookId: r.price_book_id,
      version: r.version,
      currency: r.currency,
      effectiveFrom: new Date(r.effective_from_ms).toISOString(),
      prices: r.prices,
      publishedBy: r.published_by,
      publishedAt: r.published_at,
      eventSequence: r.sequence,
    }));
  }

  async publish(input: PublishPriceBook, actor: string) {
    try {
      minorUnits(input.currency);
    } catch {
      throw new BillingRejection(422, 'unsupported_currency', `currency ${input.currency} is not supported`, 'currency');
    }
    const seen = new Set<string>();
    const prices: EventPrice[] = [];
    for (const [i, p] of input.prices.entries()) {
      const key = `${p.gpuModel}|${p.capacityType}`;
      if (seen.has(key)) throw new BillingRejection(422, 'duplicate_price', `${p.gpuModel} ${p.capacityType} is priced twice`, `prices.${i}`);
      seen.add(key);
      prices.push(eventPrice(p, i));
    }
    await this.ledger.catchUp();
    const subject = this.runtime.bus.topology.subjects.priceBook(input.priceBookId);
    const last = await this.runtime.db.selectFrom('billing_price_books').select(['version', 'currency', 'effective_from_ms']).where('price_book_id', '=', input.priceBookId).orderBy('version', 'desc').executeTakeFirst();
    const version = (last?.version ?? 0) + 1;
    if (input.version !== undefined && input.version !== version) throw new BillingRejection(409, 'version_taken', `price book ${input.priceBookId} is at version ${last?.version ?? 0}; the next version is ${version} (versions are immutable)`, 'version');
    if (last && last.currency !== input.currency) throw new BillingRejection(422, 'currency_mismatch', `price book ${input.priceBookId} is in ${last.currency}`, 'currency');
    const lastSubjectSequence = await this.runtime.bus.jsm.streams
      .getMessage(this.runtime.bus.topology.streams.events, { last_by_subj: subject })
      .then((m) => m?.seq ?? 0)
      .catch(() => 0);
    const now = this.runtime.clock.now().toISOString();
    const eventId = nameId('PriceBookPublished', input.priceBookId, String(version));
    const event = this.publisher.build(
      'PriceBookPublished',
      { priceBookId: input.priceBookId, version, currency: input.currency, effectiveFrom: input.effectiveFrom, prices, publishedBy: actor, publishedAt: now },
      { id: eventId, time: now, tenantId: null, correlationId: eventId },
    );
    try {
      const published = await this.publisher.publish(event, { expectedLastSubjectSequence: lastSubjectSequence });
      await this.ledger.waitFor(published.sequence);
      return { priceBookId: input.priceBookId, version, eventSequence: published.sequence };
    } catch (error) {
      if (isWrongLastSequence(error)) throw new BillingRejection(409, 'version_taken', `price book ${input.priceBookId} changed concurrently; retry`);
      throw error;
    }
  }
}

/**
 * One requested price as the event carries it. A tiered price names its mode explicitly
 * (graduated when omitted) and its `pricePerGpuHour` is the first tier's (filled in when omitted,
 * refused when it says otherwise); a mode without tiers is refused rather than ignored.
 */
export function eventPrice(p: PublishPriceBook['prices'][number], index: number): EventPrice {
  const field = `prices.${index}`;
  const { tiers, tierMode, pricePerGpuHour, ...rest } = p;
  if (!tiers) {
    if (tierMode) throw new BillingRejection(422, 'tier_mode_without_tiers', `tierMode ${tierMode} needs tiers`, `${field}.tiers`);
    if (pricePerGpuHour === undefined) throw new BillingRejection(422, 'price_missing', 'a price without tiers needs pricePerGpuHour', `${field}.pricePerGpuHour`);
    return { ...rest, pricePerGpuHour };
  }
  try {
    validateTiers(tiers);
  } catch (error) {
    throw new BillingRejection(422, 'invalid_tiers', (error as Error).message, `${field}.tiers`);
  }
  const first = tiers[0]!.pricePerGpuHour;
  if (pricePerGpuHour !== undefined && !money(pricePerGpuHour).eq(money(first))) {
    throw new BillingRejection(422, 'price_not_first_tier', `pricePerGpuHour of a tiered price is its first tier's (${first}); omit it or make them equal`, `${field}.pricePerGpuHour`);
  }
  return { ...rest, pricePerGpuHour: pricePerGpuHour ?? first, tierMode: tierMode ?? TIER_MODE_DEFAULT, tiers: tiers.map((t) => ({ upToGpuHours: t.upToGpuHours, pricePerGpuHour: t.pricePerGpuHour })) };
}
