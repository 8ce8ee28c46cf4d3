import { Module } from '@nestjs/common';

/** The billing service: its controllers, handlers and projections. */
@Module({ controllers: [], providers: [] })
export class BillingModule {}
