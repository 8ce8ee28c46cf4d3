/**
 * Proves the Helm chart (deploy/helm/fastgpu) with real tools: `helm lint --strict` passes (Helm
 * from the npm registry, deploy/lint.mjs), every object it renders validates against the
 * Kubernetes API schemas (kubernetes-models), each service runs two instances of the compiled
 * program with plain node as a non-root user, reads its secrets from a Secret, and the chart builds
 * on the official NATS chart (a dependency, three clustered servers with JetStream and
 * `sync_interval: always`) and on a CloudNativePG Cluster whose app Secret is the services'
 * DATABASE_URL.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { lintChart } from '../../deploy/lint.mjs';

const root = path.resolve(import.meta.dirname, '../..');
const chart = parse(readFileSync(path.join(root, 'deploy/helm/fastgpu/Chart.yaml'), 'utf8')) as { apiVersion: string; dependencies: Array<{ name: string; repository: string; condition: string }> };
const values = parse(readFileSync(path.join(root, 'deploy/helm/fastgpu/values.yaml'), 'utf8')) as {
  services: Record<string, { replicas: number }>;
  nats: { enabled: boolean; config: { cluster: { enabled: boolean; replicas: number }; jetstream: { enabled: boolean; merge: Record<string, string> } } };
  env: Record<string, string>;
};
const APPS = ['intake', 'scheduler', 'metering', 'billing', 'reliability'];

interface Container {
  command: string[];
  env: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef: { name: string; key: string } } }>;
  readinessProbe: { httpGet: { path: string } };
  livenessProbe: { httpGet: { path: string } };
}
interface Rendered {
  variant: string;
  object: {
    apiVersion: string;
    kind: string;
    metadata: { name: string };
    spec: {
      replicas?: number;
      template: { spec: { securityContext: { runAsNonRoot: boolean }; containers: Container[] } };
      instances?: number;
      bootstrap: { initdb: Record<string, string> };
      storage: { size: string };
    };
  };
}
let rendered: Rendered[];

beforeAll(async () => {
  rendered = (await lintChart()) as Rendered[];
}, 180_000);

describe('Helm chart', () => {
  it('passes helm lint --strict and renders only objects valid against the Kubernetes schemas', () => {
    // lintChart throws on a lint error or an invalid object; both variants render every service
    const kinds = (variant: string) => rendered.filter((r) => r.variant === variant).map((r) => `${r.object.kind}/${r.object.metadata.name}`);
    for (const variant of ['default values', 'own PostgreSQL (postgres.cnpg.enabled=false)']) {
      for (const app of APPS) expect(kinds(variant), variant).toEqual(expect.arrayContaining([`Deployment/fastgpu-${app}`, `Service/fastgpu-${app}`, `PodDisruptionBudget/fastgpu-${app}`]));
      expect(kinds(variant)).toContain('Job/fastgpu-migrate-1');
    }
    expect(kinds('default values')).toContain('Cluster/fastgpu-postgres');
    expect(kinds('own PostgreSQL (postgres.cnpg.enabled=false)')).not.toContain('Cluster/fastgpu-postgres');
  });

  it('runs two instances of each compiled service with plain node, non-root, secrets from Secrets', () => {
    const deployments = rendered.filter((r) => r.variant === 'default values' && r.object.kind === 'Deployment');
    expect(deployments.map((d) => d.object.metadata.name).sort()).toEqual(APPS.map((a) => `fastgpu-${a}`).sort());
    for (const { object } of deployments) {
      const app = object.metadata.name.replace('fastgpu-', '');
      expect(object.spec.replicas, app).toBe(2);
      const pod = object.spec.template.spec;
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      const container = pod.containers[0]!;
      expect(container.command).toEqual(['node', '--max-semi-space-size=2', `dist/apps/${app}/main.mjs`]);
      const env = Object.fromEntries(container.env.map((e) => [e.name, e]));
      expect(env.DATABASE_URL!.valueFrom!.secretKeyRef).toEqual({ name: 'fastgpu-postgres-app', key: 'uri' });
      expect(env.FASTGPU_NATS_PASSWORD!.valueFrom!.secretKeyRef.name).toBe('fastgpu-secrets');
      expect(env.FASTGPU_ADMIN_KEY!.valueFrom!.secretKeyRef.name).toBe('fastgpu-secrets');
      expect(env.NATS_URL!.value).toBe('nats://fastgpu:$(FASTGPU_NATS_PASSWORD)@fastgpu-nats:4222');
      expect(env.FASTGPU_STREAM_REPLICAS!.value).toBe('3');
      expect(container.readinessProbe.httpGet.path).toBe('/readyz');
      expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    }
    const migrate = rendered.find((r) => r.object.kind === 'Job')!.object;
    expect(migrate.spec.template.spec.containers[0]!.command).toEqual(['node', 'dist/libs/db/migrate.cli.mjs']);
  });

  it('builds on the official NATS chart (3 clustered servers, JetStream, sync_interval always) and a CloudNativePG cluster', () => {
    expect(chart.apiVersion).toBe('v2');
    expect(chart.dependencies).toEqual([expect.objectContaining({ name: 'nats', repository: 'https://nats-io.github.io/k8s/helm/charts/', condition: 'nats.enabled' })]);
    expect(values.nats.enabled).toBe(true);
    expect(values.nats.config.cluster).toEqual({ enabled: true, replicas: 3 });
    expect(values.nats.config.jetstream.enabled).toBe(true);
    expect(values.nats.config.jetstream.merge.sync_interval).toBe('always');
    expect(values.env.FASTGPU_STREAM_REPLICAS).toBe('3');
    for (const app of APPS) expect(values.services[app]!.replicas).toBe(2);
    const postgres = rendered.find((r) => r.object.kind === 'Cluster')!.object;
    expect(postgres.apiVersion).toBe('postgresql.cnpg.io/v1');
    expect(postgres.spec.instances).toBe(3);
    expect(postgres.spec.bootstrap.initdb).toEqual({ database: 'fastgpu', owner: 'fastgpu' });
    expect(postgres.spec.storage.size).toMatch(/^\d+Gi$/);
  });
});
