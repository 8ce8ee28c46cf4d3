import Decimal from 'decimal.js';
import { HOUR_MS } from './gpu-time';

/**
 * Money rules, written once. decimal.js with its own context: 40 significant digits,
 * ROUND_HALF_UP (ties away from zero, for positive and negative amounts alike).
 * Multiply before dividing: amount = gpuMs × pricePerGpuHour / 3 600 000.
 * Each invoice line is summed exactly, then rounded once to the currency's minor unit.
 */
export const Money = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_UP, toExpNeg: -40, toExpPos: 40 });
export type Money = InstanceType<typeof Money>;

/** ISO 4217 minor units for the currencies we bill in; an unknown currency is an error. */
const MINOR_UNITS: Record<string, number> = { USD: 2, EUR: 2, GBP: 2, CHF: 2, CAD: 2, AUD: 2, SGD: 2, JPY: 0, KRW: 0, KWD: 3, BHD: 3, JOD: 3, OMR: 3, TND: 3 };

export function minorUnits(currency: string): number {
  const digits = MINOR_UNITS[currency];
  if (digits === undefined) throw new Error(`unsupported currency ${currency}`);
  return digits;
}

export function money(value: string | number | Money): Money {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new Error(`money from a non-integer number ${value}: pass a decimal string`);
  return new Money(value);
}

/**
 * The one rounding rule of money: numerator / denominator to the nearest integer, a tie (an exact
 * half) away from zero, for positive and negative numerators alike (2.5 → 3, −2.5 → −3). Exact in
 * integers. Every rounding to a minor unit goes through it: `roundToMinor` (decimals),
 * `roundedMinorForGpuMs` (invoice lines) and the tax of a rate (`taxesFor`).
 */
export function roundHalfAwayFromZero(numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n) throw new Error(`rounding needs a positive denominator, got ${denominator}`);
  const negative = numerator < 0n;
  const rounded = (2n * (negative ? -numerator : numerator) + denominator) / (2n * denominator);
  return negative ? -rounded : rounded;
}

/**
 * Rounds once to the currency's minor unit, half away from zero (`roundHalfAwayFromZero` on the
 * decimal's exact value; decimal.js's ROUND_HALF_UP gives the same, a property test holds them
 * equal). A negative amount that rounds to zero stays a negative zero, as decimal.js left it.
 */
export function roundToMinor(amount: Money, currency: string): Money {
  const digits = minorUnits(currency);
  const { numerator, denominator } = exactFraction(amount);
  const minor = roundHalfAwayFromZero(numerator * POWERS_OF_TEN[digits]!, denominator);
  return minor === 0n && amount.isNegative() ? new Money(-0) : fromMinor(minor, currency);
}

/** A finite decimal as an exact fraction numerator / 10^k (decimal.js writes every digit in `toFixed()`). */
function exactFraction(amount: Money): { numerator: bigint; denominator: bigint } {
  if (!amount.isFinite()) throw new Error(`cannot round ${amount.toString()} to a minor unit`);
  const text = amount.toFixed();
  const point = text.indexOf('.');
  if (point < 0) return { numerator: BigInt(text), denominator: 1n };
  const fractionDigits = text.length - point - 1;
  return { numerator: BigInt(`${text.slice(0, point)}${text.slice(point + 1)}`), denominator: POWERS_OF_TEN[fractionDigits] ?? 10n ** BigInt(fractionDigits) };
}

/** Fixed-point string with exactly the currency's minor digits (for exports and APIs). */
export function formatMoney(amount: Money, currency: string): string {
  return amount.toFixed(minorUnits(currency), Decimal.ROUND_HALF_UP);
}

const parsedPrices = new Map<string, Money>();
/** Bound on memoized price strings. */
const PARSED_PRICES_MAX = 10_000;

/** Exact (unrounded) amount for GPU-milliseconds at a price per GPU-hour. */
export function amountForGpuMs(gpuMsTotal: number, pricePerGpuHour: string | Money): Money {
  let price = typeof pricePerGpuHour === 'string' ? parsedPrices.get(pricePerGpuHour) : pricePerGpuHour;
  if (!price) {
    price = new Money(pricePerGpuHour);
    if (parsedPrices.size >= PARSED_PRICES_MAX) parsedPrices.clear();
    parsedPrices.set(pricePerGpuHour as string, price);
  }
  return new Money(gpuMsTotal).times(price).dividedBy(HOUR_MS);
}

interface ScaledPrice {
  /** The price as an integer of 10^-scale units. */
  units: bigint;
  scale: number;
}
const scaledPrices = new Map<string, ScaledPrice>();

function scaledPrice(pricePerGpuHour: string): ScaledPrice {
  let scaled = scaledPrices.get(pricePerGpuHour);
  if (!scaled) {
    const m = /^(\d+)(?:\.(\d+))?$/.exec(pricePerGpuHour);
    if (!m) throw new Error(`price "${pricePerGpuHour}" is not a non-negative decimal string`);
    const fraction = m[2] ?? '';
    scaled = { units: BigInt(`${m[1]}${fraction}`), scale: fraction.length };
    if (scaledPrices.size >= PARSED_PRICES_MAX) scaledPrices.clear();
    scaledPrices.set(pricePerGpuHour, scaled);
  }
  return scaled;
}

/**
 * `roundToMinor(amountForGpuMs(gpuMs, price), currency)` in minor units (cents), computed exactly in
 * integers: the amount is gpuMs × units / (10^scale × 3 600 000); rounded to the minor unit, half
 * away from zero. Same rule, same result (a property test holds them equal); used where lines are
 * rated in bulk.
 */
export function roundedMinorForGpuMs(gpuMsTotal: number, pricePerGpuHour: string, currency: string): bigint {
  if (!Number.isSafeInteger(gpuMsTotal)) throw new Error(`gpuMs must be a safe integer, got ${gpuMsTotal}`);
  const digits = minorUnits(currency);
  const { units, scale } = scaledPrice(pricePerGpuHour);
  const numerator = BigInt(gpuMsTotal) * units * POWERS_OF_TEN[digits]!;
  const denominator = (POWERS_OF_TEN[scale] ?? 10n ** BigInt(scale)) * HOUR_MS_BIG;
  return roundHalfAwayFromZero(numerator, denominator);
}

/** The same as `roundedMinorForGpuMs`, as a decimal. */
export function roundedAmountForGpuMs(gpuMsTotal: number, pricePerGpuHour: string, currency: string): Money {
  return new Money(formatMinor(roundedMinorForGpuMs(gpuMsTotal, pricePerGpuHour, currency), currency));
}

const HOUR_MS_BIG = BigInt(HOUR_MS);
/** 10^0 … 10^40: scales of prices and minor units. */
const POWERS_OF_TEN: readonly bigint[] = Array.from({ length: 41 }, (_, i) => 10n ** BigInt(i));

/**
 * Minor units as the fixed-point string `formatMoney` gives for the same amount: exactly the
 * currency's minor digits, a leading "-" for negative amounts only (zero is "0.00").
 */
export function formatMinor(minor: bigint, currency: string): string {
  const digits = minorUnits(currency);
  const negative = minor < 0n;
  const text = (negative ? -minor : minor).toString().padStart(digits + 1, '0');
  const whole = digits ? `${text.slice(0, -digits)}.${text.slice(-digits)}` : text;
  return negative ? `-${whole}` : whole;
}

/** A decimal as minor units; it must hold no more than the currency's minor digits. */
export function toMinor(amount: Money, currency: string): bigint {
  const digits = minorUnits(currency);
  if (amount.decimalPlaces() > digits) throw new Error(`amount ${amount.toString()} is not rounded to ${currency}`);
  return BigInt(amount.times(POWERS_OF_TEN[digits]!.toString()).toFixed(0));
}

/** Minor units as a decimal. */
export function fromMinor(minor: bigint, currency: string): Money {
  return new Money(formatMinor(minor, currency));
}

const FIXED_PATTERN = /^(-?)(\d+)(?:\.(\d+))?$/;

/**
 * An exact fixed-point decimal string ("-12.345") as integer units of 10^-scale, for checks on
 * documents without decimal arithmetic. A string with more fraction digits than `scale` is an error.
 */
export function fixedUnits(text: string, scale: number): bigint {
  const m = FIXED_PATTERN.exec(text);
  if (!m) throw new Error(`"${text}" is not a fixed-point decimal`);
  const fraction = m[3] ?? '';
  if (fraction.length > scale) throw new Error(`"${text}" has more than ${scale} fraction digits`);
  const units = BigInt(m[2]! + fraction.padEnd(scale, '0'));
  return m[1] ? -units : units;
}

/** Fraction digits of a fixed-point decimal string. */
export function fractionDigits(text: string): number {
  const dot = text.indexOf('.');
  return dot < 0 ? 0 : text.length - dot - 1;
}
