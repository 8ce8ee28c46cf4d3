import { Module } from '@nestjs/common';
import { OutputsController } from './outputs.controller';
import { OutputsService } from './outputs.service';
import { ResultAggregator } from './result-aggregator';
import { TenantLogQuotaService } from './tenant-log-quota';

/** Job outputs: GET /v1/jobs/{id}/logs (SSE), GET /v1/jobs/{id}/results, .../results/{index} and .../results/aggregate; the aggregator that builds the last; per-tenant limits on the LOGS stream. */
@Module({ controllers: [OutputsController], providers: [OutputsService, ResultAggregator, TenantLogQuotaService] })
export class OutputsModule {}
