// The multi-node topology of deploy/k8s, for real on one machine: a coordinator and two "nodes" (`sigmatrain launch`,
// 2 workers each) in three network namespaces joined by a private bridge, with 10.x addresses that exist only inside
// them. Names resolve as Kubernetes DNS would: /etc/netns/<ns>/hosts (bind-mounted over /etc/hosts by `ip netns exec`)
// maps `coordinator`, `node0`, `node1`, so the flags are those of the manifests: --coordinator coordinator:29400,
// --dist.transport tcp, --dist.ringHost <node name>. node1 finds the coordinator through MASTER_ADDR/MASTER_PORT and
// names itself through RANK (the Kubeflow aliases); the coordinator gets WORLD_SIZE and --resume auto. Where
// `ip netns add` is refused it falls back to loopback addresses (127.0.0.2, 127.0.0.3) and says so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stepsPerEpoch } from '../../worker/data/sampler.js';
import { createLab, netnsUnavailable, txBytes, type NetnsLab } from './comm/netns.js';
import { CLI, Proc, TINY, tempDir } from './helpers/job.js';

const N_TRAIN = 3 * 16; // tiny.yaml: 3 classes × 16 train images
const GLOBAL_BATCH = 12;
const EPOCHS = 2;
const TOTAL = EPOCHS * stepsPerEpoch(N_TRAIN, GLOBAL_BATCH, false);
const HOSTS = ['coordinator', 'node0', 'node1'] as const;
type Host = (typeof HOSTS)[number];

interface Topology {
  kind: 'netns' | 'loopback';
  /** How each host is reached by its peers (a name in namespaces, an address on loopback). */
  name: Record<Host, string>;
  /** Command prefix that runs a process on a host. */
  prefix: Record<Host, string[]>;
  coordinatorPort: number;
  /** tcp ring port of local rank 0, per node (distinct on a shared loopback). */
  ringPortBase: Record<'node0' | 'node1', number>;
  lab?: NetnsLab;
  nsOf?: Record<Host, string>;
  destroy(): void;
}

/** Three namespaces on a private bridge, each with an /etc/netns/<ns>/hosts naming all three. */
function namespaces(): Topology {
  const lab = createLab(HOSTS.length);
  const nsOf = Object.fromEntries(HOSTS.map((h, i) => [h, lab.names[i]])) as Record<Host, string>;
  const hosts = ['127.0.0.1 localhost', '::1 localhost', ...HOSTS.map((h, i) => `${lab.addrs[i]} ${h}`)].join('\n') + '\n';
  const madeNetnsDir = !existsSync('/etc/netns');
  const dirs = lab.names.map((ns) => join('/etc/netns', ns));
  const destroy = () => {
    lab.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    try {
      if (madeNetnsDir && readdirSync('/etc/netns').length === 0) rmdirSync('/etc/netns');
    } catch {
      // already gone
    }
  };
  try {
    for (const d of dirs) {
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'hosts'), hosts);
    }
  } catch (e) {
    destroy();
    throw e;
  }
  return {
    kind: 'netns',
    name: { coordinator: 'coordinator', node0: 'node0', node1: 'node1' },
    prefix: Object.fromEntries(HOSTS.map((h) => [h, ['ip', 'netns', 'exec', nsOf[h]]])) as Record<Host, string[]>,
    coordinatorPort: 29400,
    ringPortBase: { node0: 29500, node1: 29500 },
    lab,
    nsOf,
    destroy,
  };
}

/** The fallback: one network, distinct loopback addresses, peers named by address. */
function loopback(): Topology {
  const port = 31000 + Math.floor(Math.random() * 2000) * 4;
  return {
    kind: 'loopback',
    name: { coordinator: '127.0.0.1', node0: '127.0.0.2', node1: '127.0.0.3' },
    prefix: { coordinator: [], node0: [], node1: [] },
    coordinatorPort: port,
    ringPortBase: { node0: port + 100, node1: port + 110 },
    destroy: () => {},
  };
}

/**
 * The flags that differ per node: its ring host, and on a shared loopback also its ring ports (both nodes bind
 * 0.0.0.0); in namespaces every node keeps the default ports.
 */
function nodeArgs(topo: Pick<Topology, 'kind' | 'name' | 'ringPortBase'>, node: 'node0' | 'node1'): string[] {
  return ['--dist.ringHost', topo.name[node], ...(topo.kind === 'loopback' ? ['--dist.ringPortBase', String(topo.ringPortBase[node])] : [])];
}

function start(topo: Topology, host: Host, args: string[], env: NodeJS.ProcessEnv): Proc {
  const [cmd, ...pre] = [...topo.prefix[host], process.execPath, CLI, ...args];
  // Only the aliases this process is meant to see: none leak in from the test runner's environment.
  const base = { ...process.env };
  for (const k of ['MASTER_ADDR', 'MASTER_PORT', 'PET_MASTER_ADDR', 'PET_MASTER_PORT', 'WORLD_SIZE', 'RANK', 'JOB_COMPLETION_INDEX', 'PET_NODE_RANK', 'PET_NNODES']) delete base[k];
  return new Proc(spawn(cmd, pre, { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

interface Entry { step: number; epoch: number; samples: number; generation: number }

/**
 * Exit codes of all processes. A process that fails (non-zero) stops the others 5 s later, and after `limitMs`
 * everything still running is killed (code 137), so a broken topology fails with logs instead of hanging.
 */
async function settle(ps: Proc[], limitMs: number, fatal: () => boolean): Promise<number[]> {
  const killAll = () => ps.forEach((p) => p.child.exitCode === null && p.child.signalCode === null && p.child.kill('SIGKILL'));
  const timer = setTimeout(killAll, limitMs);
  let grace: NodeJS.Timeout | undefined;
  const stopSoon = () => (grace ??= setTimeout(killAll, 5_000));
  for (const p of ps) void p.exit.then((code) => code !== 0 && stopSoon());
  const poll = setInterval(() => fatal() && stopSoon(), 500);
  try {
    return await Promise.all(ps.map((p) => p.exit));
  } finally {
    clearTimeout(timer);
    clearTimeout(grace);
    clearInterval(poll);
  }
}

/** Why namespaces are not used (refused, or SGT_MULTINODE_LOOPBACK=1 to exercise the fallback), or null. */
const WHY = process.env.SGT_MULTINODE_LOOPBACK === '1' ? 'SGT_MULTINODE_LOOPBACK=1' : netnsUnavailable();

test('multi-node topology: coordinator + 2 nodes × 2 workers across network namespaces, k8s-style names, tcp ring', { timeout: 300_000 }, async (t) => {
  const t0 = Date.now();
  const why = WHY;
  if (why) t.diagnostic(`network namespaces refused (${why}): FALLING BACK to loopback addresses 127.0.0.2 / 127.0.0.3, peers named by address, not by name`);
  const topo = why ? loopback() : namespaces();
  const procs: Proc[] = [];
  const cleanup = () => {
    for (const p of procs) {
      try {
        if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL'); // workers follow their launcher
      } catch {
        // already gone
      }
    }
    topo.destroy();
  };
  const onSignal = (sig: NodeJS.Signals) => {
    cleanup();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.on('exit', cleanup);
  t.signal.addEventListener('abort', cleanup); // a timed-out or cancelled test still removes everything
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const root = tempDir('multinode');
  try {
    t.diagnostic(why ? 'topology: loopback' : `topology: namespaces ${JSON.stringify(topo.nsOf)} on bridge ${topo.lab!.names[0].replace(/n0$/, 'b')}, addresses ${topo.lab!.addrs.join(', ')}`);
    const runDir = join(root, 'run'); // "the PVC": the same path for the coordinator and both nodes
    const coordAddr = `${topo.name.coordinator}:${topo.coordinatorPort}`;
    // What every process shares, as the ConfigMap + common flags of deploy/k8s do (the data set path is the same on
    // every node; each node makes its own copy there on first use).
    const common = ['--config', TINY, '--metrics.port', '0', '--train.epochs', String(EPOCHS), '--data.root', join(root, 'data', 'shapes'), '--dist.transport', 'tcp'];
    const coordinator = start(topo, 'coordinator', ['coordinator', ...common, '--dist.coordinator', coordAddr, '--run-dir', runDir, '--resume', 'auto'], { WORLD_SIZE: '4' });
    procs.push(coordinator);
    // node0 as deploy/k8s/base/workers.yaml runs it: --coordinator <service>:29400, --node-rank <index>.
    const node0 = start(topo, 'node0', [
      'launch', ...common, '--nproc-per-node', '2', '--coordinator', coordAddr, '--node-rank', '0',
      ...nodeArgs(topo, 'node0'),
    ], {});
    // node1 as under Kubeflow: MASTER_ADDR/MASTER_PORT (no --coordinator), RANK names the node.
    const node1 = start(topo, 'node1', [
      'launch', ...common, '--nproc-per-node', '2', ...nodeArgs(topo, 'node1'),
    ], { MASTER_ADDR: topo.name.coordinator, MASTER_PORT: String(topo.coordinatorPort), RANK: '1' });
    procs.push(node0, node1);

    const refused = () => coordinator.messages(/^refused a worker/).length > 0;
    const [cc, c0, c1] = await settle([coordinator, node0, node1], 240_000, refused);
    const tail = (p: Proc) => p.text.slice(-25).join('\n');
    assert.equal(cc, 0, `coordinator exited ${cc}:\n${tail(coordinator)}`);
    assert.equal(c0, 0, `node0 exited ${c0}:\n${tail(node0)}`);
    assert.equal(c1, 0, `node1 exited ${c1}:\n${tail(node1)}`);
    const seconds = (Date.now() - t0) / 1000;

    // The summary line, all steps done by one generation of all 4 workers.
    const done = coordinator.messages(/^done: /);
    assert.equal(done.length, 1, `summary line:\n${tail(coordinator)}`);
    assert.match(done[0].msg!, new RegExp(`^done: ${TOTAL}/${TOTAL} steps in `));
    const summary = done[0].summary as { steps: number; workerFailures: number; generations: number };
    assert.equal(summary.steps, TOTAL);
    assert.equal(summary.workerFailures, 0);
    const gens = coordinator.messages(/^generation \d+: \d+ workers \[/);
    assert.ok(gens.length >= 1, 'a generation formed');
    const m = /^generation \d+: (\d+) workers \[([^\]]*)\]/.exec(gens[0].msg!)!;
    assert.equal(Number(m[1]), 4, gens[0].msg);
    assert.deepEqual(m[2].split(', ').sort(), ['node0-0', 'node0-1', 'node1-0', 'node1-1']);

    // Each worker advertised its ring socket under its node's name (what its peers connected to).
    for (const [node, p] of [['node0', node0], ['node1', node1]] as const) {
      const ready = p.messages(/ ready on /);
      assert.equal(ready.length, 2, `${node}: two workers ready`);
      const rings = ready.map((l) => l.ring).sort();
      assert.deepEqual(rings, [0, 1].map((r) => `tcp://${topo.name[node]}:${topo.ringPortBase[node] + r}`));
    }

    // Ledger: every step exactly once, every epoch saw the whole data set.
    const ledger = readFileSync(join(runDir, 'ledger.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Entry);
    assert.deepEqual(ledger.map((e) => e.step).sort((a, b) => a - b), Array.from({ length: TOTAL }, (_, i) => i));
    for (let ep = 0; ep < EPOCHS; ep++) {
      assert.equal(ledger.filter((e) => e.epoch === ep).reduce((a, e) => a + e.samples, 0), N_TRAIN, `epoch ${ep} samples`);
    }

    // The traffic really crossed the veths (not a loopback shortcut): the ring spans both nodes.
    if (topo.lab) {
      const bytes = Object.fromEntries(HOSTS.map((h) => [h, txBytes(topo.nsOf![h])]));
      t.diagnostic(`bytes sent through eth0: ${JSON.stringify(bytes)}`);
      for (const h of HOSTS) assert.ok(bytes[h] > 10_000, `${h} sent only ${bytes[h]} bytes through its veth`);
    }
    t.diagnostic(`${TOTAL} steps, 4 workers on 2 nodes, ${why ? 'loopback' : 'network namespaces'}: ${seconds.toFixed(1)} s`);
  } finally {
    cleanup();
    process.removeListener('exit', cleanup);
    t.signal.removeEventListener('abort', cleanup);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    rmSync(root, { recursive: true, force: true });
  }
});
