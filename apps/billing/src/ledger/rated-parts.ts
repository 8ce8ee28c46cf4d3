import type { Selectable } from 'kysely';
import type { BillingRatedPartsTable } from '@fastgpu/db';
import { billedParts, type PriceTimeline } from '@fastgpu/money';
import type { PieceRow } from './billing-tables';
import { usagePieceOf } from './invoice-inputs';

/**
 * Rating, in one phase: a period piece is rated by libs/money against the price timeline in force
 * when it is put on an invoice (or re-rated when a price version reaches it), into the rows of
 * `billing_rated_parts` that invoices sum. Nothing else rates stored usage.
 */
export type RatedPartRow = Selectable<BillingRatedPartsTable>;

/** One piece rated by libs/money into the rows of `billing_rated_parts` (a part without a price keeps a null version). */
export function ratedPartRows(p: PieceRow, timeline: PriceTimeline): RatedPartRow[] {
  const piece = usagePieceOf(p, false);
  const { parts, errors } = billedParts([piece], timeline);
  const common = { event_id: p.event_id, piece: p.piece, invoice_id: p.invoice_id!, service_period: p.service_period, gpu_model: p.gpu_model, capacity_type: p.capacity_type, interrupted: p.interrupted };
  const rows: RatedPartRow[] = [];
  for (const part of parts) rows.push({ ...common, part: rows.length, price_book_id: part.version.priceBookId, version: part.version.version, start_ms: part.startMs, billed_gpu_ms: part.billedGpuMs });
  for (const error of errors) rows.push({ ...common, part: rows.length, price_book_id: null, version: null, start_ms: error.atMs, billed_gpu_ms: 0 });
  // A piece always has a part 0, so counting parts 0 counts pieces. A piece that bills nothing at a
  // price (a zero-length piece at an allocation's end whose rounding is nil) names that price: a
  // part without a version means a missing price (the held-invoices gauge counts them).
  if (rows.length === 0) {
    const found = timeline.priceAt(p.start_ms, p.gpu_model, p.capacity_type);
    rows.push({ ...common, part: 0, price_book_id: found?.version.priceBookId ?? null, version: found?.version.version ?? null, start_ms: p.start_ms, billed_gpu_ms: 0 });
  }
  return rows;
}
