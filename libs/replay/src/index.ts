export * from './rebuild';
export * from './diff';
export * from './cli';
