import { Module } from '@nestjs/common';
import { DeadLettersController } from './dead-letters/dead-letters.controller';
import { LiveController, LiveFeeds } from './live/live.controller';

/**
 * The console's routes that belong to no one service: the live feed of the log and the
 * dead-letter stream. Every process that serves HTTP includes it (libs/platform startServices),
 * beside the built console it serves at /console.
 */
@Module({ controllers: [LiveController, DeadLettersController], providers: [LiveFeeds], exports: [LiveFeeds] })
export class ConsoleModule {}
