export * from './gpu-time';
export * from './money';
export * from './rating';
export * from './rating-period';
export * from './tax';
export * from './calendar';
export * from './price-timeline';
