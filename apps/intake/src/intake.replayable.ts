import type { ReplayableProjection } from '@fastgpu/replay';
import { jobsProjection, jobsProjectionTables } from './jobs/jobs.projection';
import { directoryProjection, directoryProjectionTables } from './tenants/directory.projection';

/** Intake's read models as `npm run replay -- intake-jobs | intake-directory` rebuilds them. */
export const jobsReplayable: ReplayableProjection = { name: jobsProjection.name, tables: jobsProjectionTables, create: () => jobsProjection };
export const directoryReplayable: ReplayableProjection = { name: directoryProjection.name, tables: directoryProjectionTables, create: () => directoryProjection };
