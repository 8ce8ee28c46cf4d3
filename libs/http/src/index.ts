export * from './errors';
export * from './validation';
export * from './api-doc';
export * from './health.controller';
