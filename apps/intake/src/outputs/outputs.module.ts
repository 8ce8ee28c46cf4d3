import { Module } from '@nestjs/common';
import { OutputsController } from './outputs.controller';
import { OutputsService } from './outputs.service';
import { ResultAggregator } from './result-aggregator';

/** Job outputs: GET /v1/jobs/{id}/logs (SSE), GET /v1/jobs/{id}/results, .../results/{index} and .../results/aggregate; the aggregator that builds the last. */
@Module({ controllers: [OutputsController], providers: [OutputsService, ResultAggregator] })
export class OutputsModule {}
