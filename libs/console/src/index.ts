export * from './console.module';
export * from './static/console-static';
export * from './live/live-audience';
export * from './live/live-feed';
export * from './live/live.controller';
export * from './dead-letters/dead-letters.controller';
export * from './live/live-resume';
