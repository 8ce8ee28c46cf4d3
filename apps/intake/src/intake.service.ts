import type { ServiceDefinition } from '@fastgpu/platform';
import { intakeGrpcHandlers } from './intake.grpc';
import { IntakeModule } from './intake.module';

export const intakeService: ServiceDefinition = { name: 'intake', module: IntakeModule, grpc: intakeGrpcHandlers };
