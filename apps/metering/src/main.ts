import 'reflect-metadata';
import { prepareServiceProcess } from '@fastgpu/platform/process-start';

// The service is imported after prepareServiceProcess (libs/platform/src/process-start.ts).
await prepareServiceProcess();
const { runStandalone } = await import('@fastgpu/platform');
const { meteringService } = await import('./metering.service');
await runStandalone(meteringService);
