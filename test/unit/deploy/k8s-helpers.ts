// Helpers of the deploy/k8s tests: render a kustomization with the real `kubectl kustomize`, look objects up, and
// schema-validate them offline with kubernetes-models and @kubernetes-models/prometheus-operator.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import * as apps from 'kubernetes-models/apps/v1';
import * as batch from 'kubernetes-models/batch/v1';
import * as core from 'kubernetes-models/v1';
import * as monitoring from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';

export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url)); // dist/test/unit/deploy/ → repo root
export const K8S = join(ROOT, 'deploy/k8s');
export const OVERLAYS = ['single-node', 'multi-node'] as const;

/** A rendered Kubernetes object, loosely typed: tests read the fields they check. */
export type Obj = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: any; data?: Record<string, string> };

/** Why `kubectl kustomize` cannot run here, or null. */
export function kubectlUnavailable(): string | null {
  try {
    const v = execFileSync('kubectl', ['version', '--client', '-o', 'json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const info = JSON.parse(v) as { kustomizeVersion?: string; clientVersion?: { gitVersion?: string } };
    const kv = /^v?(\d+)/.exec(info.kustomizeVersion ?? '');
    if (!kv || Number(kv[1]) < 4) {
      return `kubectl ${info.clientVersion?.gitVersion ?? '?'} embeds kustomize ${info.kustomizeVersion ?? '(none)'}; the manifests need kustomize ≥ 4 (kubectl ≥ 1.21)`;
    }
    return null;
  } catch (e) {
    return `kubectl not found or broken (${(e as Error).message.split('\n')[0]}): .ci/run installs it`;
  }
}

/** `kubectl kustomize DIR` (offline, no cluster), parsed into objects. */
export function render(dir: string): Obj[] {
  const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  return parseAllDocuments(out)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`kubectl kustomize ${dir}: unparsable output: ${d.errors[0].message}`);
      return d.toJS() as Obj | null;
    })
    .filter((o): o is Obj => o !== null);
}

export function find(objs: Obj[], kind: string, name: string): Obj {
  const hits = objs.filter((o) => o.kind === kind && o.metadata.name === name);
  if (hits.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${hits.length} (have: ${objs.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')})`);
  return hits[0];
}

export function findKind(objs: Obj[], kind: string): Obj[] {
  return objs.filter((o) => o.kind === kind);
}

type ModelClass = { apiVersion: string; kind: string; new (data: unknown): { validate(): void } };

/** apiVersion/kind → model class, for every kind these modules define. */
const MODELS = new Map<string, ModelClass>();
for (const mod of [core, apps, batch, monitoring] as Record<string, unknown>[]) {
  for (const v of Object.values(mod)) {
    const m = v as Partial<ModelClass>;
    if (typeof v === 'function' && typeof m.apiVersion === 'string' && typeof m.kind === 'string') MODELS.set(`${m.apiVersion}/${m.kind}`, m as ModelClass);
  }
}

/** Schema errors of one object ('' when valid); an object of a kind without a model is an error too. */
export function schemaErrors(o: Obj): string {
  const Model = MODELS.get(`${o.apiVersion}/${o.kind}`);
  if (!Model) return `no schema for ${o.apiVersion} ${o.kind}`;
  try {
    new Model(o).validate();
    return '';
  } catch (e) {
    return (e as Error).message;
  }
}

/** The env of a container as name → value (literal values only; valueFrom entries map to their fieldPath). */
export function envOf(container: { env?: Array<{ name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }> }): Map<string, string> {
  return new Map((container.env ?? []).map((e) => [e.name, e.value ?? `fieldRef:${e.valueFrom?.fieldRef?.fieldPath ?? '?'}`]));
}

/** Expands $(VAR) references in a container arg the way the kubelet does (unknown references stay as written). */
export function expand(s: string, env: Map<string, string>): string {
  return s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env.get(name) ?? whole);
}
