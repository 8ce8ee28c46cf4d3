export * from './gpu-time';
export * from './money';
