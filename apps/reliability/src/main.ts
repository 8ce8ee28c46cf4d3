import 'reflect-metadata';
import { runStandalone } from '@fastgpu/platform';
import { reliabilityService } from './reliability.service';

await runStandalone(reliabilityService);
