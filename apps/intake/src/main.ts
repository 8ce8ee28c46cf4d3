import 'reflect-metadata';
import { runStandalone } from '@fastgpu/platform';
import { intakeService } from './intake.service';

await runStandalone(intakeService);
