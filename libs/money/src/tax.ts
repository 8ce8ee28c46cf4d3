import { formatMinor, formatMoney, fromMinor, minorUnits, Money, roundHalfAwayFromZero, roundToMinor, toMinor, type Money as MoneyValue } from './money';

/**
 * Invoice totals, written once: subtotal = sum of the rounded lines; tax per rate on the taxable
 * subtotal, rounded once per rate; prepaid credit grants applied by priority; SLA credits as a
 * percentage of a period's charges. An amount due is never negative, and no credit takes more
 * than there is to credit: what an invoice cannot take of an SLA credit carries forward to the
 * tenant's next invoices.
 */
export interface TaxRate {
  name: string;
  /** Decimal fraction, e.g. "0.19" for 19 %. */
  rate: string;
}

export interface TaxAmount {
  name: string;
  rate: string;
  taxableAmount: MoneyValue;
  amount: MoneyValue;
  /** `amount` in minor units. */
  amountMinor: bigint;
}

export interface PrepaidGrant {
  grantId: string;
  /** What is left of the grant before this invoice. */
  remaining: MoneyValue;
  /** Higher priority is used first. */
  priority: number;
  grantedAtMs: number;
  /** The grant cannot be used at or after this instant; null = never expires. */
  expiresAtMs: number | null;
}

export interface PrepaidApplication {
  grantId: string;
  amount: MoneyValue;
}

/** A rounded line: its amount as a decimal, or in minor units (bulk runs), or both (then equal). */
export interface TotalsLine {
  amount?: MoneyValue;
  amountMinor?: bigint;
  taxable: boolean;
}

export interface InvoiceTotals {
  subtotal: MoneyValue;
  taxableSubtotal: MoneyValue;
  taxes: TaxAmount[];
  total: MoneyValue;
  prepaid: PrepaidApplication[];
  amountDue: MoneyValue;
  /** The same totals as fixed-point strings with the currency's minor digits (what documents show). */
  formatted: { subtotal: string; total: string; amountDue: string };
}

const ZERO = new Money(0);

export function sumMoney(values: Iterable<MoneyValue>): MoneyValue {
  let sum = ZERO;
  for (const v of values) sum = sum.plus(v);
  return sum;
}

export function validateTaxRate(rate: string): void {
  if (!TAX_RATE_PATTERN.test(rate)) throw new Error(`tax rate "${rate}" must be a decimal fraction between 0 and 1`);
}

const TAX_RATE_PATTERN = /^(0(\.\d+)?|1(\.0+)?)$/;
/** Rates with more fraction digits than this are taxed with decimal.js (a product past its 40 digits). */
const TAX_RATE_INTEGER_DIGITS_MAX = 24;

/**
 * Tax of one rate on a rounded, non-negative base, in minor units: base × rate rounded once, half
 * away from zero — `roundToMinor(base × rate)` computed exactly in integers.
 */
function taxMinor(baseMinor: bigint, rate: string, currency: string): bigint {
  validateTaxRate(rate);
  const fraction = rate.split('.')[1] ?? '';
  if (fraction.length > TAX_RATE_INTEGER_DIGITS_MAX) return toMinor(roundToMinor(fromMinor(baseMinor, currency).times(rate), currency), currency);
  const units = BigInt(rate.replace('.', ''));
  return roundHalfAwayFromZero(baseMinor * units, 10n ** BigInt(fraction.length));
}

function taxesForMinor(taxableMinor: bigint, rates: readonly TaxRate[], currency: string): TaxAmount[] {
  if (rates.length === 0) return [];
  const baseMinor = taxableMinor > 0n ? taxableMinor : 0n;
  const base = fromMinor(baseMinor, currency);
  return rates.map((r) => {
    const amountMinor = taxMinor(baseMinor, r.rate, currency);
    return { name: r.name, rate: r.rate, taxableAmount: base, amount: fromMinor(amountMinor, currency), amountMinor };
  });
}

/** Tax per rate on the taxable subtotal (rounded to the minor unit), each rounded once. A negative base is taxed as zero. */
export function taxesFor(taxableSubtotal: MoneyValue, rates: readonly TaxRate[], currency: string): TaxAmount[] {
  return taxesForMinor(toMinor(taxableSubtotal, currency), rates, currency);
}

/** One `TaxRatesSet` of a tenant, as billing reads it from the log. */
export interface TaxRateSet {
  rates: readonly TaxRate[];
  /** When the rates were set (`effectiveAt`). */
  setAtMs: number;
  /** When they take effect (`effectiveFrom`), or null for a set without a date. */
  effectiveFromMs: number | null;
  /** Position in the log (stream sequence): the later of two sets taking effect at once wins. */
  sequence: number;
}

/**
 * The tax rates of an invoice, written once. A set with an effective date applies to a billing
 * period when it takes effect before the period ends, so the period is taxed at the rates in force
 * at its last instant (the supply is complete when the period ends). A set without a date applies,
 * as before dates existed, to invoices taxed at or after it was set (`atMs`: the finalization time,
 * or now for a draft), so invoices finalized under that rule rebuild to the same bytes. Among the
 * sets that apply, the one taking effect last wins (then the later in the log); none → no tax.
 */
export function taxRatesInForce(sets: readonly TaxRateSet[], invoice: { periodEndMs: number; atMs: number }): TaxRate[] {
  let chosen: { effectiveMs: number; sequence: number; rates: readonly TaxRate[] } | undefined;
  for (const set of sets) {
    const applies = set.effectiveFromMs === null ? set.setAtMs <= invoice.atMs : set.effectiveFromMs < invoice.periodEndMs;
    if (!applies) continue;
    const effectiveMs = set.effectiveFromMs ?? set.setAtMs;
    if (!chosen || effectiveMs > chosen.effectiveMs || (effectiveMs === chosen.effectiveMs && set.sequence > chosen.sequence)) chosen = { effectiveMs, sequence: set.sequence, rates: set.rates };
  }
  return chosen ? [...chosen.rates] : [];
}

/** Order in which grants are used: priority (high first), soonest expiry, oldest grant, id. */
export function grantOrder(a: PrepaidGrant, b: PrepaidGrant): number {
  const expiryA = a.expiresAtMs ?? Number.MAX_SAFE_INTEGER;
  const expiryB = b.expiresAtMs ?? Number.MAX_SAFE_INTEGER;
  return b.priority - a.priority || expiryA - expiryB || a.grantedAtMs - b.grantedAtMs || (a.grantId < b.grantId ? -1 : a.grantId > b.grantId ? 1 : 0);
}

/** Applies usable grants (granted at or before `atMs`, not expired at `atMs`) to an amount, never beyond it. */
export function applyPrepaidGrants(amount: MoneyValue, grants: readonly PrepaidGrant[], atMs: number): PrepaidApplication[] {
  let open = Money.max(amount, ZERO);
  const applications: PrepaidApplication[] = [];
  for (const grant of [...grants].sort(grantOrder)) {
    if (open.isZero()) break;
    if (grant.grantedAtMs > atMs) continue;
    if (grant.expiresAtMs !== null && grant.expiresAtMs <= atMs) continue;
    if (grant.remaining.lte(0)) continue;
    const used = Money.min(open, grant.remaining);
    applications.push({ grantId: grant.grantId, amount: used });
    open = open.minus(used);
  }
  return applications;
}

/** An SLA credit: `percent` of a base amount, rounded once, as a negative amount; never more than `capAmount`. */
export function slaCreditAmount(baseAmount: MoneyValue, percent: number, currency: string, capAmount: MoneyValue): MoneyValue {
  return slaCreditSplit(baseAmount, percent, currency, capAmount).applied;
}

export interface CreditSplit {
  /** What this invoice credits: zero or negative, never more than the cap. */
  applied: MoneyValue;
  /** What is left of the credit for the tenant's next invoices: zero or positive. */
  carried: MoneyValue;
}

/**
 * An SLA credit, `percent` of a base amount rounded once, split into what an invoice that still
 * charges `capAmount` can take (applied, negative) and the rest, carried forward (positive).
 */
export function slaCreditSplit(baseAmount: MoneyValue, percent: number, currency: string, capAmount: MoneyValue): CreditSplit {
  if (!Number.isInteger(percent) || percent < 0 || percent > 100) throw new Error(`credit percent must be an integer 0..100, got ${percent}`);
  const credit = roundToMinor(Money.max(baseAmount, ZERO).times(percent).dividedBy(100), currency);
  return carriedCreditSplit(credit, capAmount);
}

/**
 * A credit carried forward from an earlier invoice (`remaining`, positive, already rounded) on an
 * invoice that still charges `capAmount`: the invoice takes as much as it can, the rest carries on.
 */
export function carriedCreditSplit(remaining: MoneyValue, capAmount: MoneyValue): CreditSplit {
  if (remaining.isNegative()) throw new Error(`a credit cannot be negative, got ${remaining.toString()}`);
  const applied = Money.min(remaining, Money.max(capAmount, ZERO));
  return { applied: applied.negated(), carried: remaining.minus(applied) };
}

/**
 * Totals of rounded lines. Lines are expected already rounded (each once); the subtotal is their
 * sum and must not be negative (callers cap credits before). Summed in minor units (exact integers);
 * prepaid grants are applied with decimal.js.
 */
export function computeTotals(lines: readonly TotalsLine[], taxRates: readonly TaxRate[], grants: readonly PrepaidGrant[], atMs: number, currency: string): InvoiceTotals {
  minorUnits(currency);
  let subtotalMinor = 0n;
  let taxableMinor = 0n;
  for (const line of lines) {
    const minor = line.amountMinor ?? toMinor(line.amount!, currency);
    if (line.amountMinor !== undefined && line.amount !== undefined && !line.amount.eq(fromMinor(minor, currency))) throw new Error(`line amount ${line.amount.toString()} ≠ ${minor} minor units`);
    subtotalMinor += minor;
    if (line.taxable) taxableMinor += minor;
  }
  if (subtotalMinor < 0n) throw new Error(`subtotal ${formatMinor(subtotalMinor, currency)} is negative: credits must be capped`);
  const taxes = taxesForMinor(taxableMinor, taxRates, currency);
  let totalMinor = subtotalMinor;
  for (const t of taxes) totalMinor += t.amountMinor;
  const prepaid = grants.length ? applyPrepaidGrants(fromMinor(totalMinor, currency), grants, atMs) : [];
  const amountDue = prepaid.length ? fromMinor(totalMinor, currency).minus(sumMoney(prepaid.map((p) => p.amount))) : undefined;
  if (amountDue?.isNegative()) throw new Error('amount due went negative');
  // Decimals only when read: a period run uses the formatted minor units.
  return {
    get subtotal() {
      return fromMinor(subtotalMinor, currency);
    },
    get taxableSubtotal() {
      return fromMinor(taxableMinor, currency);
    },
    taxes,
    get total() {
      return fromMinor(totalMinor, currency);
    },
    prepaid,
    get amountDue() {
      return amountDue ?? fromMinor(totalMinor, currency);
    },
    formatted: {
      subtotal: formatMinor(subtotalMinor, currency),
      total: formatMinor(totalMinor, currency),
      amountDue: amountDue ? formatMoney(amountDue, currency) : formatMinor(totalMinor, currency),
    },
  };
}

/**
 * Splits `totalMinor` over weights in proportion to them, in whole minor units, by the largest
 * remainder (Hamilton) method: each share is the floor of its exact part, and the units left over
 * go one each to the largest remainders (earlier weights first on ties), so the shares sum to the
 * total exactly, and no share is more than one unit from its exact part. Weights may be negative
 * (a credit line takes a negative share) but must sum to a positive number unless the total is 0.
 */
export function allocateLargestRemainder(totalMinor: bigint, weights: readonly bigint[]): bigint[] {
  if (totalMinor === 0n) return weights.map(() => 0n);
  let sum = 0n;
  for (const w of weights) sum += w;
  if (sum <= 0n) throw new Error(`cannot allocate ${totalMinor} over weights summing to ${sum}`);
  const shares: bigint[] = [];
  const remainders: Array<{ index: number; remainder: bigint }> = [];
  let allocated = 0n;
  for (const [index, weight] of weights.entries()) {
    const product = totalMinor * weight;
    // Floor division (BigInt division truncates toward zero).
    let share = product / sum;
    if (product % sum !== 0n && product < 0n !== sum < 0n) share -= 1n;
    shares.push(share);
    allocated += share;
    remainders.push({ index, remainder: product - share * sum });
  }
  let left = totalMinor - allocated;
  if (left < 0n || left > BigInt(weights.length)) throw new Error(`largest remainder left ${left} units for ${weights.length} weights`);
  remainders.sort((a, b) => (a.remainder === b.remainder ? a.index - b.index : a.remainder > b.remainder ? -1 : 1));
  for (const { index } of remainders) {
    if (left === 0n) break;
    shares[index]! += 1n;
    left -= 1n;
  }
  return shares;
}

/** One rate's tax on one line (minor units). */
export interface LineTaxMinor {
  name: string;
  rate: string;
  amountMinor: bigint;
}

/**
 * The invoice's tax of each rate allocated to its taxable lines in proportion to their amounts
 * (largest remainder), so each rate's line taxes sum exactly to that rate's tax on the invoice.
 * Lines that are not taxable, and every line when the taxable base is not positive (then the tax
 * is zero), get zero. Returns, per line, one entry per rate in the invoice's order of rates.
 */
export function allocateTaxToLines(lines: readonly { amountMinor: bigint; taxable: boolean }[], taxes: readonly { name: string; rate: string; amountMinor: bigint }[]): LineTaxMinor[][] {
  let baseMinor = 0n;
  for (const line of lines) if (line.taxable) baseMinor += line.amountMinor;
  const perRate = taxes.map((tax) => {
    if (baseMinor <= 0n || tax.amountMinor === 0n) return lines.map(() => 0n);
    return allocateLargestRemainder(
      tax.amountMinor,
      lines.map((line) => (line.taxable ? line.amountMinor : 0n)),
    );
  });
  return lines.map((_, index) => taxes.map((tax, rateIndex) => ({ name: tax.name, rate: tax.rate, amountMinor: perRate[rateIndex]![index]! })));
}

/**
 * A tax-inclusive amount split into net and tax per rate (a lump-sum credit on an invoice taxed
 * at `rates`): tax of each rate = gross × rate / (1 + sum of rates), rounded once to the minor
 * unit, half away from zero; net = gross − the taxes, so net + taxes = gross exactly.
 */
export function splitTaxIncluded(grossMinor: bigint, rates: readonly TaxRate[], currency: string): { netMinor: bigint; taxes: Array<{ name: string; rate: string; amountMinor: bigint }> } {
  if (grossMinor < 0n) throw new Error(`a tax-inclusive amount cannot be negative, got ${grossMinor}`);
  let rateSum = new Money(0);
  for (const r of rates) {
    validateTaxRate(r.rate);
    rateSum = rateSum.plus(r.rate);
  }
  const gross = fromMinor(grossMinor, currency);
  const divisor = rateSum.plus(1);
  let netMinor = grossMinor;
  const taxes = rates.map((r) => {
    const amountMinor = toMinor(roundToMinor(gross.times(r.rate).dividedBy(divisor), currency), currency);
    netMinor -= amountMinor;
    return { name: r.name, rate: r.rate, amountMinor };
  });
  return { netMinor, taxes };
}

/** Tax of one rate on a net amount in minor units, rounded once (the invoice rule, for credit notes). */
export function taxOnNetMinor(netMinor: bigint, rate: string, currency: string): bigint {
  if (netMinor < 0n) throw new Error(`tax on a negative net ${netMinor}`);
  return taxMinor(netMinor, rate, currency);
}
