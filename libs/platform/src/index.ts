export * from './embedded';
export * from './runtime';
export * from './app';
export * from './standalone';
export * from './start-retry';
export * from './projections';
