/** One entry point of the production build: its source and its output, paths from the repository root. */
export interface EntryPoint {
  source: string;
  output: string;
}
/** The production build's output folder (dist/ at the repository root). */
export const distFolder: string;
/** Every entry point: each app's main.ts and every `*.cli.ts` under apps/ and libs/. */
export function entryPoints(): Promise<EntryPoint[]>;
/** Builds every entry point into dist/ (emptied first); returns the entries built. */
export function buildAll(options?: { log?: (line: string) => void }): Promise<EntryPoint[]>;
