import type { ReactNode } from 'react';
import { FleetView } from './views/fleet';
import { InvoiceDetailView } from './views/invoice-detail';
import { InvoicesView } from './views/invoices';
import { JobDetailView } from './views/job-detail';
import { JobsView } from './views/jobs';
import { LeasesView } from './views/leases';
import { DeadLettersView, ProjectionsView, QueuesView } from './views/operations';
import { PriceBooksView, ReviewQueueView } from './views/finance';
import { SlaView } from './views/sla';
import { SloView } from './views/slo';
import { SubmitJobView } from './views/submit-job';
import { UsageView } from './views/usage';

export interface Route {
  pattern: string;
  /** Roles' areas that may open it (admin: finance and sre). */
  areas: Array<'tenant' | 'finance' | 'sre'>;
  render(params: Record<string, string>): ReactNode;
}

/** Every view and its deep link below /console (first match wins). */
export const routes: Route[] = [
  { pattern: '/jobs', areas: ['tenant', 'sre'], render: () => <JobsView /> },
  { pattern: '/jobs/new', areas: ['tenant'], render: () => <SubmitJobView /> },
  { pattern: '/jobs/:jobId', areas: ['tenant', 'sre'], render: (p) => <JobDetailView key={p.jobId} jobId={p.jobId ?? ''} /> },
  { pattern: '/leases', areas: ['tenant'], render: () => <LeasesView /> },
  { pattern: '/usage', areas: ['tenant', 'finance', 'sre'], render: () => <UsageView /> },
  { pattern: '/invoices', areas: ['tenant', 'finance'], render: () => <InvoicesView /> },
  { pattern: '/invoices/:invoiceId', areas: ['tenant', 'finance'], render: (p) => <InvoiceDetailView key={p.invoiceId} invoiceId={p.invoiceId ?? ''} /> },
  { pattern: '/sla', areas: ['tenant', 'finance', 'sre'], render: () => <SlaView /> },
  { pattern: '/review-queue', areas: ['finance'], render: () => <ReviewQueueView /> },
  { pattern: '/price-books', areas: ['finance', 'tenant'], render: () => <PriceBooksView /> },
  { pattern: '/fleet', areas: ['sre'], render: () => <FleetView /> },
  { pattern: '/queues', areas: ['sre'], render: () => <QueuesView /> },
  { pattern: '/projections', areas: ['sre'], render: () => <ProjectionsView /> },
  { pattern: '/dead-letters', areas: ['sre'], render: () => <DeadLettersView /> },
  { pattern: '/slo', areas: ['sre'], render: () => <SloView /> },
];
