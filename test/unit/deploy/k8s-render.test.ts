// deploy/k8s rendered for real (`kubectl kustomize`, offline) for the base and every overlay: every object passes its
// OpenAPI schema (kubernetes-models, @kubernetes-models/prometheus-operator), and the objects fit together the way the
// runtime needs them to: coordinator Service ↔ --coordinator, headless Service ↔ subdomain ↔ --dist.ringHost,
// GPUs ↔ --nproc-per-node ↔ WORLD_SIZE, PVC at the same path everywhere, PodMonitor port names ↔ container ports
// ↔ metrics.port + 1 + local rank, and the flags load through the real config schema. Also the Kubeflow example.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from '../../../shared/config/index.js';
import { EXIT_INPUT_ERROR } from '../../../shared/errors.js';
import { K8S, OVERLAYS, envOf, expand, find, findKind, kubectlUnavailable, render, schemaErrors, type Obj } from './k8s-helpers.js';

/** Nodes × GPUs per node of each kustomization, and its ring transport. */
const SHAPES: Record<string, { nodes: number; gpus: number; transport: 'tcp' | 'ipc' }> = {
  base: { nodes: 2, gpus: 1, transport: 'tcp' },
  'single-node': { nodes: 1, gpus: 8, transport: 'ipc' },
  'multi-node': { nodes: 4, gpus: 8, transport: 'tcp' },
};
const DIRS: Record<string, string> = { base: join(K8S, 'base'), ...Object.fromEntries(OVERLAYS.map((o) => [o, join(K8S, 'overlays', o)])) };
/** Flags of the sigmatrain CLI itself; every other --flag is a config key (coordinator/cli/args.ts CLI_FLAGS). */
const CLI_FLAGS = new Set(['config', 'run-dir', 'resume', 'workers', 'nproc-per-node', 'coordinator', 'gpus', 'node-rank', 'max-restarts', 'node-name', 'after-finish']);
/** Values the kubelet would substitute for a pod (namespace "ml", index 3). */
const POD_ENV: Record<string, string> = {
  "fieldRef:metadata.annotations['batch.kubernetes.io/job-completion-index']": '3',
  'fieldRef:metadata.namespace': 'ml',
};

const why = kubectlUnavailable();

test('kubectl with kustomize ≥ 4 is installed (.ci/run installs it)', () => {
  assert.equal(why, null, why ?? '');
});

/** Splits args into CLI flags and config-key flags (both as name → value). */
function flags(args: string[]): { cli: Map<string, string>; config: string[] } {
  const cli = new Map<string, string>();
  const config: string[] = [];
  for (let i = 1; i < args.length; i += 2) {
    assert.ok(args[i].startsWith('--') && args[i + 1] !== undefined, `bad argument list near "${args[i]}": ${args.join(' ')}`);
    const name = args[i].slice(2);
    if (CLI_FLAGS.has(name)) cli.set(name, args[i + 1]);
    else config.push(args[i], args[i + 1]);
  }
  return { cli, config };
}

/** The pod env after fieldRef substitution (labels['job-name'] is the Job's name, as the Job controller sets it). */
function podEnv(container: Parameters<typeof envOf>[0], jobName: string): Map<string, string> {
  const env = envOf(container);
  for (const [k, v] of env) {
    if (v === "fieldRef:metadata.labels['job-name']") env.set(k, jobName);
    else if (POD_ENV[v] !== undefined) env.set(k, POD_ENV[v]);
  }
  // Declared-in-order $(VAR) references inside env values, as the kubelet expands them.
  for (const [k, v] of env) env.set(k, expand(v, env));
  return env;
}

for (const [name, dir] of Object.entries(DIRS)) {
  test(`${name}: renders with kubectl kustomize and every object passes its schema`, { skip: why ?? false }, () => {
    const objs = render(dir);
    const kinds = objs.map((o) => o.kind).sort();
    assert.deepEqual(kinds, ['ConfigMap', 'ConfigMap', 'Deployment', 'Job', 'PersistentVolumeClaim', 'PodMonitor', 'PodMonitor', 'PrometheusRule', 'Service', 'Service']);
    const errors = objs.map((o) => [`${o.kind}/${o.metadata.name}`, schemaErrors(o)]).filter(([, e]) => e !== '');
    assert.deepEqual(errors, []);
    for (const o of objs) assert.equal(o.metadata.labels?.['app.kubernetes.io/name'], 'sigmatrain', `${o.kind}/${o.metadata.name} labelled`);
  });

  test(`${name}: the objects fit together as the runtime needs`, { skip: why ?? false }, () => {
    const shape = SHAPES[name];
    const objs = render(dir);
    const dep = find(objs, 'Deployment', 'sigmatrain-coordinator');
    const job = find(objs, 'Job', 'sigmatrain-workers');
    const coordSvc = find(objs, 'Service', 'sigmatrain-coordinator');
    const headless = find(objs, 'Service', 'sigmatrain-workers');
    const pvc = findKind(objs, 'PersistentVolumeClaim')[0];
    const configMap = findKind(objs, 'ConfigMap').find((c) => c.metadata.name.startsWith('sigmatrain-config'))!;
    const cPod = dep.spec.template;
    const wPod = job.spec.template;
    const coord = cPod.spec.containers[0];
    const launch = wPod.spec.containers[0];
    const matches = (sel: Record<string, string>, labels: Record<string, string>) => Object.entries(sel).every(([k, v]) => labels[k] === v);

    // Coordinator: one, never two at once; its Service selects it and maps control/metrics to its ports.
    assert.equal(dep.spec.replicas, 1);
    assert.equal(dep.spec.strategy.type, 'Recreate');
    assert.ok(matches(dep.spec.selector.matchLabels, cPod.metadata.labels));
    assert.ok(matches(coordSvc.spec.selector, cPod.metadata.labels), 'coordinator Service selects the coordinator pod');
    assert.ok(!matches(coordSvc.spec.selector, wPod.metadata.labels), 'coordinator Service does not select workers');
    const cPorts = new Map<string, number>(coord.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]));
    const control = coordSvc.spec.ports.find((p: { name: string }) => p.name === 'control');
    assert.equal(cPorts.get(control.targetPort), control.port, 'control port: Service port = container port');
    const cArgs = flags(coord.args.map((a: string) => expand(a, envOf(coord))));
    assert.equal(coord.args[0], 'coordinator');
    assert.equal(cArgs.cli.get('resume'), 'auto', 'a restarted coordinator continues the job');
    assert.equal(cArgs.cli.get('after-finish'), 'serve', 'a finished coordinator stays up (an exit would be restarted)');
    assert.equal(Number(envOf(coord).get('WORLD_SIZE')), shape.nodes * shape.gpus, 'WORLD_SIZE = nodes × GPUs per node');

    // Workers: Indexed Job, one pod per node, stable DNS through subdomain = headless Service.
    assert.equal(job.spec.completionMode, 'Indexed');
    assert.equal(job.spec.completions, shape.nodes);
    assert.equal(job.spec.parallelism, shape.nodes);
    assert.equal(job.spec.selector, undefined, 'the Job controller makes its own selector');
    assert.equal(wPod.spec.subdomain, headless.metadata.name);
    assert.equal(headless.spec.clusterIP, 'None');
    assert.ok(matches(headless.spec.selector, wPod.metadata.labels), 'headless Service selects the worker pods');
    assert.ok(!matches(headless.spec.selector, cPod.metadata.labels));
    // Bad input (a worker's exit EXIT_INPUT_ERROR, which launch passes on) fails the Job at once, not after backoffLimit
    // pods; podFailurePolicy is only honoured with restartPolicy Never.
    const failJob = job.spec.podFailurePolicy?.rules?.find((r: { action: string }) => r.action === 'FailJob');
    assert.deepEqual(failJob?.onExitCodes, { containerName: launch.name, operator: 'In', values: [EXIT_INPUT_ERROR] });
    assert.equal(wPod.spec.restartPolicy, 'Never');

    const env = podEnv(launch, job.metadata.name);
    const args = launch.args.map((a: string) => expand(a, env));
    assert.equal(args[0], 'launch');
    const w = flags(args);
    assert.equal(Number(w.cli.get('nproc-per-node')), shape.gpus);
    assert.equal(Number(launch.resources.limits['nvidia.com/gpu']), shape.gpus, 'one GPU per worker');
    assert.equal(w.cli.get('gpus'), 'all');
    assert.equal(w.cli.get('coordinator'), `${coordSvc.metadata.name}:${control.port}`);
    assert.equal(w.cli.get('node-rank'), '3', '--node-rank is the completion index');
    const cfg = new Map<string, string>();
    for (let i = 0; i < w.config.length; i += 2) cfg.set(w.config[i].slice(2), w.config[i + 1]);
    assert.equal(cfg.get('dist.transport'), shape.transport);
    // <hostname>.<subdomain>.<namespace>.svc, hostname of an Indexed Job pod = <job name>-<index>.
    assert.equal(cfg.get('dist.ringHost'), `${job.metadata.name}-3.${headless.metadata.name}.ml.svc`);

    // Config: the ConfigMap (hash-suffixed by kustomize) is mounted where --config points, in both pods.
    for (const [pod, c] of [[cPod, coord], [wPod, launch]] as const) {
      const vol = pod.spec.volumes.find((v: { configMap?: { name: string } }) => v.configMap?.name === configMap.metadata.name);
      assert.ok(vol, 'the config ConfigMap is a volume');
      const mount = c.volumeMounts.find((m: { name: string }) => m.name === vol.name);
      assert.ok(Object.keys(configMap.data!).includes('config.yaml'));
      assert.equal(flags(c.args).cli.get('config'), `${mount.mountPath}/config.yaml`);
    }

    // Checkpoints: the RWX PVC, mounted at the same path in both (rank 0 writes into the coordinator's --run-dir).
    assert.ok(pvc.spec.accessModes.includes('ReadWriteMany'));
    const runsMount = (pod: Obj['spec'], c: { volumeMounts: Array<{ name: string; mountPath: string }> }) => {
      const vol = pod.spec.volumes.find((v: { persistentVolumeClaim?: { claimName: string } }) => v.persistentVolumeClaim?.claimName === pvc.metadata.name);
      assert.ok(vol, 'the PVC is a volume');
      return c.volumeMounts.find((m) => m.name === vol.name)!.mountPath;
    };
    const runsPath = runsMount(cPod, coord);
    assert.equal(runsMount(wPod, launch), runsPath);
    assert.ok(cArgs.cli.get('run-dir')!.startsWith(`${runsPath}/`), `--run-dir ${cArgs.cli.get('run-dir')} is on the PVC`);

    // Every --key value loads through the real config schema, with the cluster config file; the coordinator and the
    // workers hold the same config but for the per-node dist.ringHost (it admits only workers whose config hash
    // equals its own: see test/integration/multinode.test.ts for the ringHost part).
    const file = join(K8S, 'base/sigmatrain.yaml');
    const wc = loadConfig({ file, args: [...w.config, '--dist.coordinator', w.cli.get('coordinator')!], env: {} });
    const cc = loadConfig({ file, args: cArgs.config, env: {} });
    assert.equal(wc.dist.transport, shape.transport);
    assert.equal(cc.dist.coordinator.split(':')[1], String(control.port), 'the coordinator binds the Service\'s control port');
    assert.deepStrictEqual(cc, { ...wc, dist: { ...wc.dist, ringHost: cc.dist.ringHost } }, 'coordinator config = worker config, but for dist.ringHost');

    // Metrics: PodMonitor selectors match the pods; each endpoint names a container port; worker port of local
    // rank r = metrics.port + 1 + r for every local rank this pod runs.
    const monitors = findKind(objs, 'PodMonitor');
    const portsOf = (c: { ports: Array<{ name: string; containerPort: number }> }) => new Map(c.ports.map((p) => [p.name, p.containerPort]));
    for (const [pod, c] of [[cPod, coord], [wPod, launch]] as const) {
      const m = monitors.filter((pm) => matches(pm.spec.selector.matchLabels, pod.metadata.labels));
      assert.equal(m.length, 1, 'exactly one PodMonitor per role');
      const ports = portsOf(c);
      for (const ep of m[0].spec.podMetricsEndpoints) assert.ok(ports.has(ep.port), `PodMonitor port ${ep.port} is a container port`);
    }
    assert.equal(cPorts.get('metrics'), cc.metrics.port);
    const wPorts = portsOf(launch);
    for (let r = 0; r < shape.gpus; r++) assert.equal(wPorts.get(`metrics-${r}`), wc.metrics.port + 1 + r, `metrics port of local rank ${r}`);
    assert.equal(find(objs, 'PrometheusRule', 'sigmatrain').metadata.labels?.release, monitors[0].metadata.labels?.release, 'rules and monitors carry the same selector label');
  });
}

test('deploy/k8s/kubeflow/pytorchjob.yaml: pod templates pass their schema; master = coordinator, workers = launch', () => {
  const docs = parseAllDocuments(readFileSync(join(K8S, 'kubeflow/pytorchjob.yaml'), 'utf8')).map((d) => d.toJS() as Obj);
  assert.equal(docs.length, 1);
  const job = docs[0];
  assert.equal(job.apiVersion, 'kubeflow.org/v1');
  assert.equal(job.kind, 'PyTorchJob');
  const specs = job.spec.pytorchReplicaSpecs as Record<string, { replicas: number; template: { spec: { containers: Array<{ name: string; args: string[]; ports: Array<{ name: string; containerPort: number }>; resources?: { limits?: Record<string, number> } }> } } }>;
  for (const [role, s] of Object.entries(specs)) {
    const errors = schemaErrors({ apiVersion: 'v1', kind: 'PodTemplate', metadata: { name: role.toLowerCase() }, template: s.template } as unknown as Obj);
    assert.equal(errors, '', `${role} pod template`);
    assert.equal(s.template.spec.containers[0].name, 'pytorch', 'the training operator looks for the container named pytorch');
  }
  const master = specs.Master.template.spec.containers[0];
  const worker = specs.Worker.template.spec.containers[0];
  assert.equal(master.args[0], 'coordinator');
  const gpus = Number(worker.resources?.limits?.['nvidia.com/gpu']);
  assert.equal(Number(flags(master.args).cli.get('workers')), specs.Worker.replicas * gpus, '--workers = worker replicas × GPUs');
  assert.ok(master.ports.some((p) => p.name === 'pytorchjob-port'), 'MASTER_PORT comes from the port named pytorchjob-port');
  assert.equal(worker.args[0], 'launch');
  assert.equal(Number(flags(worker.args).cli.get('nproc-per-node')), gpus);
  assert.equal(flags(worker.args).cli.get('coordinator'), undefined, 'MASTER_ADDR:MASTER_PORT is the coordinator alias');
  // The operator sets MASTER_ADDR=<job>-master-0 and MASTER_PORT=<pytorchjob-port> in the Worker pods: the
  // coordinator's own dist.coordinator and dist.transport must read the same (its admission compares config hashes).
  const port = master.ports.find((p) => p.name === 'pytorchjob-port')!.containerPort;
  assert.equal(flags(master.args).config.join(' '), `--dist.coordinator ${job.metadata.name}-master-0:${port} --dist.transport tcp`);
  assert.equal(flags(worker.args).config.slice(0, 2).join(' '), '--dist.transport tcp');
});
