import type { ReactNode } from 'react';
import { JobsView } from './views/jobs';

export interface Route {
  pattern: string;
  /** Roles' areas that may open it (admin: finance and sre). */
  areas: Array<'tenant' | 'finance' | 'sre'>;
  render(params: Record<string, string>): ReactNode;
}

/** Every view and its deep link below /console (first match wins). */
export const routes: Route[] = [
  { pattern: '/jobs', areas: ['tenant', 'sre'], render: () => <JobsView /> },
];
