export * from './environment';
export * from './services';
export * from './clock';
export * from './api-keys';
export * from './tcp-relay';
export * from './throwaway-nats';
export * from './usage-recorded';
