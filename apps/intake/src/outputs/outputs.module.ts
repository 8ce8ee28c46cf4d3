import { Module } from '@nestjs/common';
import { OutputsController } from './outputs.controller';
import { OutputsService } from './outputs.service';

/** Job outputs: GET /v1/jobs/{id}/logs (SSE), GET /v1/jobs/{id}/results and .../results/{index}. */
@Module({ controllers: [OutputsController], providers: [OutputsService] })
export class OutputsModule {}
