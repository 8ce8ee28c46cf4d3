import { Module } from '@nestjs/common';
import { JobsController } from './jobs/jobs.controller';
import { LeasesModule } from './leases/leases.module';
import { OutputsModule } from './outputs/outputs.module';
import { JobsService } from './jobs/jobs.service';
import { IntakeProjections } from './shared/intake-projections';
import { MeController } from './tenants/me.controller';
import { TenantsController } from './tenants/tenants.controller';
import { TenantsService } from './tenants/tenants.service';

/** The intake service: the tenant-facing gateway for jobs, tenants and API keys. */
@Module({
  imports: [LeasesModule, OutputsModule],
  controllers: [TenantsController, MeController, JobsController],
  providers: [IntakeProjections, TenantsService, JobsService],
  exports: [JobsService, TenantsService],
})
export class IntakeModule {}
