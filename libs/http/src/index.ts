export * from './errors';
export * from './domain-errors';
export * from './validation';
export * from './api-doc';
export * from './query';
export * from './route-table';
export * from './accept';
export * from './cursor';
