import { minorUnits, Money, roundToMinor, type Money as MoneyValue } from './money';

/**
 * Invoice totals, written once: subtotal = sum of the rounded lines; tax per rate on the taxable
 * subtotal, rounded once per rate; prepaid credit grants applied by priority; SLA credits as a
 * percentage of a period's charges. An amount due is never negative, and no credit takes more
 * than there is to credit.
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

export interface TotalsLine {
  amount: MoneyValue;
  taxable: boolean;
}

export interface InvoiceTotals {
  subtotal: MoneyValue;
  taxableSubtotal: MoneyValue;
  taxes: TaxAmount[];
  total: MoneyValue;
  prepaid: PrepaidApplication[];
  amountDue: MoneyValue;
}

const ZERO = new Money(0);

export function sumMoney(values: Iterable<MoneyValue>): MoneyValue {
  let sum = ZERO;
  for (const v of values) sum = sum.plus(v);
  return sum;
}

export function validateTaxRate(rate: string): void {
  if (!/^(0(\.\d+)?|1(\.0+)?)$/.test(rate)) throw new Error(`tax rate "${rate}" must be a decimal fraction between 0 and 1`);
}

/** Tax per rate on the taxable subtotal, each rounded once. A negative base is taxed as zero. */
export function taxesFor(taxableSubtotal: MoneyValue, rates: readonly TaxRate[], currency: string): TaxAmount[] {
  const base = Money.max(taxableSubtotal, ZERO);
  return rates.map((r) => {
    validateTaxRate(r.rate);
    return { name: r.name, rate: r.rate, taxableAmount: base, amount: roundToMinor(base.times(r.rate), currency) };
  });
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
  if (!Number.isInteger(percent) || percent < 0 || percent > 100) throw new Error(`credit percent must be an integer 0..100, got ${percent}`);
  const credit = roundToMinor(Money.max(baseAmount, ZERO).times(percent).dividedBy(100), currency);
  return Money.min(credit, Money.max(capAmount, ZERO)).negated();
}

/**
 * Totals of rounded lines. Lines are expected already rounded (each once); the subtotal is their
 * sum and must not be negative (callers cap credits before).
 */
export function computeTotals(lines: readonly TotalsLine[], taxRates: readonly TaxRate[], grants: readonly PrepaidGrant[], atMs: number, currency: string): InvoiceTotals {
  const digits = minorUnits(currency);
  for (const line of lines) {
    if (line.amount.decimalPlaces() > digits) throw new Error(`line amount ${line.amount.toString()} is not rounded to ${currency}`);
  }
  const subtotal = sumMoney(lines.map((l) => l.amount));
  if (subtotal.isNegative()) throw new Error(`subtotal ${subtotal.toString()} is negative: credits must be capped`);
  const taxableSubtotal = sumMoney(lines.filter((l) => l.taxable).map((l) => l.amount));
  const taxes = taxesFor(taxableSubtotal, taxRates, currency);
  const total = subtotal.plus(sumMoney(taxes.map((t) => t.amount)));
  const prepaid = applyPrepaidGrants(total, grants, atMs);
  const amountDue = total.minus(sumMoney(prepaid.map((p) => p.amount)));
  if (amountDue.isNegative()) throw new Error('amount due went negative');
  return { subtotal, taxableSubtotal, taxes, total, prepaid, amountDue };
}


