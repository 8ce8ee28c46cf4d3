import { Inject, Injectable } from '@nestjs/common';
import { TIER_MODE_DEFAULT, type DomainEvent, type EventData, type TierMode } from '@fastgpu/contracts';
import { handleCommand, JetStreamEventStream, type Decider } from '@fastgpu/eventsourcing';
import { minorUnits, money, validateTiers, type PriceTier } from '@fastgpu/money';
import { publisherFor, RUNTIME, type Runtime } from '@fastgpu/runtime';
import { BillingLedger } from '../ledger/billing.ledger';
import { BillingRejection } from '../invoices/invoice.decider';
import { priceBookDecider, type PriceBookState, type PublishPriceBookCommand } from './price-book.decider';

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
 * is never replaced: the pure decider (price-book.decider.ts) gives the next version number of the
 * book, read from the book's subject, and the kernel (libs/eventsourcing `handleCommand`) appends
 * it against that subject's last sequence, so two concurrent publishers never take one number: the
 * later one is decided again (the next number, or 409 `version_taken` when it asked for a version).
 */
@Injectable()
export class PriceBooksService {
  private readonly store: JetStreamEventStream;
  private readonly decider: Decider<PriceBookState, PublishPriceBookCommand, DomainEvent>;

  constructor(
    @Inject(RUNTIME) private readonly runtime: Runtime,
    @Inject(BillingLedger) private readonly ledger: BillingLedger,
  ) {
    const publisher = publisherFor(runtime, 'billing');
    this.store = new JetStreamEventStream(runtime.bus, publisher);
    this.decider = priceBookDecider((type, data, meta) => publisher.build(type, data, meta));
  }

  async list() {
    await this.ledger.catchUp();
    const rows = await this.runtime.db.selectFrom('billing_price_books').selectAll().orderBy('price_book_id').orderBy('version').execute();
    return rows.map((r) => ({
      priceBookId: r.price_book_id,
      version: r.version,
      currency: r.currency,
      effectiveFrom: new Date(r.effective_from_ms).toISOString(),
      // Written from a validated PriceBookPublished (jsonb, parsed on read).
      prices: r.prices as EventData<'PriceBookPublished'>['prices'],
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
    const subject = this.runtime.bus.topology.subjects.priceBook(input.priceBookId);
    const command: PublishPriceBookCommand = { priceBookId: input.priceBookId, version: input.version, currency: input.currency, effectiveFrom: input.effectiveFrom, prices, actor, publishedAt: this.runtime.clock.now().toISOString() };
    // Read the book's subject, decide, append against its last sequence; decided again when another publisher got there first (10071).
    const { events, version } = await handleCommand(this.store, this.decider, subject, command);
    await this.ledger.waitFor(version);
    return { priceBookId: input.priceBookId, version: (events[0] as DomainEvent<'PriceBookPublished'>).data.version, eventSequence: version };
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
