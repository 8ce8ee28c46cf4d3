export * from './bus';
export * from './streams';
export * from './publisher';
export * from './dead-letters';
export * from './follower';
export * from './projection-runner';
export * from './jetstream.transport';
export * from './sequence-waiters';
