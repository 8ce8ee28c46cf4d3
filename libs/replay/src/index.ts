export * from './rebuild';
export * from './diff';
export * from './pipeline';
export * from './cli';
export { EventNotAppliedError } from './threaded-reader';
export { readRangeOnMainThread, type RangeReader } from './plain-reader';
