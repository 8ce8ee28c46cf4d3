import { Module } from '@nestjs/common';

/** The reliability service: its controllers, handlers and projections. */
@Module({ controllers: [], providers: [] })
export class ReliabilityModule {}
