export * from './ids';
export * from './envelope';
export * from './events';
export * from './subjects';
export * from './codec';
export * from './upcasters';
export * from './node-protocol';
export * from './compiled-schema';
