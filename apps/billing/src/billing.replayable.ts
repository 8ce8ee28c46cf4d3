import type { ReplayableProjection } from '@fastgpu/replay';
import { BILLING_PROJECTION, billingProjection } from './ledger/billing.projection';
import { BILLING_TABLES } from './ledger/billing-tables';

/** The billing ledger as `npm run replay -- billing-ledger` rebuilds it (`npm run invoices -- verify` also compares documents byte for byte). */
export const billingReplayable: ReplayableProjection = { name: BILLING_PROJECTION, tables: BILLING_TABLES, create: () => billingProjection() };
