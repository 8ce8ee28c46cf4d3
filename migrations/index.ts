/**
 * Every migration, by name, imported statically: bundles (scripts/compile.mjs) carry them and no
 * loader is needed at run time. A new migration file is added here too; libs/db checks that this
 * list and the folder agree.
 */
import type { Migration } from 'kysely/migration';
import * as m20261125000 from './20261125000_foundation';
import * as m20261125001 from './20261125001_intake_jobs';
import * as m20261125100 from './20261125100_scheduler_leases';
import * as m20261125200 from './20261125200_metering';
import * as m20261125210 from './20261125210_metering_placed_ms';
import * as m20261125300 from './20261125300_billing_ledger';
import * as m20261125301 from './20261125301_billing_rated_parts';
import * as m20261125350 from './20261125350_billing_finance_actions_projection';
import * as m20261125351 from './20261125351_billing_grant_release';
import * as m20261125360 from './20261125360_billing_rated_parts_line_index';
import * as m20261125400 from './20261125400_reliability_sla';
import * as m20261203100 from './20261203100_intake_idempotency_scopes';
import * as m20261203200 from './20261203200_metering_external_receipts_by_source';
import * as m20261203201 from './20261203201_metering_late_usage';
import * as m20261203202 from './20261203202_metering_drop_legacy_receipts';
import * as m20261203300 from './20261203300_billing_accrual';
import * as m20261203301 from './20261203301_billing_invoice_lifecycle';
import * as m20261203400 from './20261203400_billing_webhooks';
import * as m20261203500 from './20261203500_metering_node_epochs';
import * as m20261203302 from './20261203302_billing_audit';
import * as m20261203303 from './20261203303_billing_review_decisions';

export const migrations: Readonly<Record<string, Migration>> = {
  '20261125000_foundation': m20261125000,
  '20261125001_intake_jobs': m20261125001,
  '20261125100_scheduler_leases': m20261125100,
  '20261125200_metering': m20261125200,
  '20261125210_metering_placed_ms': m20261125210,
  '20261125300_billing_ledger': m20261125300,
  '20261125301_billing_rated_parts': m20261125301,
  '20261125350_billing_finance_actions_projection': m20261125350,
  '20261125351_billing_grant_release': m20261125351,
  '20261125360_billing_rated_parts_line_index': m20261125360,
  '20261125400_reliability_sla': m20261125400,
  '20261203100_intake_idempotency_scopes': m20261203100,
  '20261203200_metering_external_receipts_by_source': m20261203200,
  '20261203201_metering_late_usage': m20261203201,
  '20261203202_metering_drop_legacy_receipts': m20261203202,
  '20261203300_billing_accrual': m20261203300,
  '20261203301_billing_invoice_lifecycle': m20261203301,
  '20261203400_billing_webhooks': m20261203400,
  '20261203302_billing_audit': m20261203302,
  '20261203303_billing_review_decisions': m20261203303,
  '20261203500_metering_node_epochs': m20261203500,
};
