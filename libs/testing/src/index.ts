export * from './environment';
export * from './services';
