import { writeFileSync } from 'node:fs';
import { renderEventCatalogue } from './catalogue-doc';

// `npm run catalogue`: regenerates docs/event-catalogue.md from the event schemas.
writeFileSync(new URL('../../../docs/event-catalogue.md', import.meta.url), renderEventCatalogue());
console.log('docs/event-catalogue.md written');
