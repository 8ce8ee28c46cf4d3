/** Compiles a TypeScript entry point into one ESM file under node_modules/.cache/fastgpu; returns its path. */
export function compile(entry: string): Promise<string>;
