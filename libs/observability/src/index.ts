export * from './logger';
export * from './fleet.fold';
export * from './metrics';
export * from './http';
export * from './metrics.module';
export * from './node-reports';
