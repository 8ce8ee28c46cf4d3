export * from './errors';
export * from './ports';
export * from './watch';
export * from './server';
export * from './grpc.module';
