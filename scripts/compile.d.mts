/**
 * Compiles a TypeScript entry point into one ESM file: `outfile` when given, else a file under
 * node_modules/.cache/fastgpu; returns its path.
 */
export function compile(entry: string, outfile?: string): Promise<string>;
