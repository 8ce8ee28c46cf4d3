import { Module } from '@nestjs/common';
import { LeasesController } from './leases.controller';
import { LeasesService } from './leases.service';

/** Leases: POST /v1/leases, GET /v1/leases/{id}, DELETE /v1/leases/{id}, and their read model. */
@Module({ controllers: [LeasesController], providers: [LeasesService], exports: [LeasesService] })
export class LeasesModule {}
