export * from './document';
export * from './routes';
export * from './openapi.module';
