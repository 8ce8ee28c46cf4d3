import 'reflect-metadata';
import { runStandalone } from '@fastgpu/platform';
import { meteringService } from './metering.service';

await runStandalone(meteringService);
