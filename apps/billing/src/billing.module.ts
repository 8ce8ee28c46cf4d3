import { Module, type DynamicModule } from '@nestjs/common';
import { BILLING_OPTIONS, billingOptions, type BillingOptions } from './billing.config';
import { BillingLedger } from './ledger/billing.ledger';
import { BillingAdminController, InvoicesController } from './invoices/invoices.controller';
import { InvoiceCommands } from './invoices/invoice-commands';
import { InvoiceQueries } from './invoices/invoice-queries';
import { FinanceActionPublisher } from './finance-actions/finance-action-publisher';
import { TenantSettingsService } from './finance-actions/tenant-settings.service';
import { ReviewQueueService } from './ledger/review-queue.service';
import { PriceBooksController } from './price-books/price-books.controller';
import { CreditNotesController } from './credit-notes/credit-notes.controller';
import { CreditNotesService } from './credit-notes/credit-notes.service';
import { WebhooksController } from './webhooks/webhooks.controller';
import { WebhooksService } from './webhooks/webhooks.service';
import { PriceBooksService } from './price-books/price-books.service';
import { InvoiceLifecycleController } from './invoices/lifecycle.controller';
import { BillingAuditController } from './ledger/audit.controller';
import { BillingMetrics } from './ledger/billing.metrics';
import { ReviewQueueController } from './ledger/review.controller';
import { BillingProfilesController } from './billing-profiles/billing-profiles.controller';

/** The billing service: the ledger projection, invoices, price books and finance actions. */
@Module({})
export class BillingModule {
  static forRoot(options: Partial<BillingOptions> = {}): DynamicModule {
    return {
      module: BillingModule,
      controllers: [InvoicesController, BillingAdminController, PriceBooksController, CreditNotesController, InvoiceLifecycleController, BillingAuditController, ReviewQueueController, WebhooksController, BillingProfilesController],
      providers: [{ provide: BILLING_OPTIONS, useValue: billingOptions(options) }, BillingLedger, BillingMetrics, FinanceActionPublisher, InvoiceQueries, InvoiceCommands, TenantSettingsService, ReviewQueueService, PriceBooksService, CreditNotesService, WebhooksService],
      exports: [BillingLedger, InvoiceQueries, InvoiceCommands],
    };
  }
}
