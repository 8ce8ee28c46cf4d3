export * from './database';
export * from './migrate';
export * from './checkpoint';
export * from './copy';
export * from './errors';
export * from './unavailable';
export * from './schema';
export * from './schema-billing';
