export * from './embedded';
export * from './runtime';
export * from './app';
export * from './standalone';
export * from './projections';
