import 'reflect-metadata';
import { runStandalone } from '@fastgpu/platform';
import { schedulerService } from './scheduler.service';

await runStandalone(schedulerService);
