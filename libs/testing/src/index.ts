export * from './environment';
export * from './services';
export * from './clock';
export * from './api-keys';
export * from './throwaway-nats';
export * from './usage-recorded';
