export * from './build-event';
export * from './decider';
export * from './event-stream';
export * from './handle-command';
export * from './specification';
export * from './jetstream-event-stream';
