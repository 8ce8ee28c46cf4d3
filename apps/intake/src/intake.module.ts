import { Module } from '@nestjs/common';

/** The intake service: its controllers, handlers and projections. */
@Module({ controllers: [], providers: [] })
export class IntakeModule {}
