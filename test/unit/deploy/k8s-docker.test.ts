// The container packaging, checked without a Docker engine: Dockerfile stages, bases, non-root USER, ENTRYPOINT and
// EXPOSE; .dockerignore lets in exactly what the stages COPY; the build stage's sources compile on their own and the
// runtime layout (/app/dist + production dependencies) starts; deploy/compose.yaml fits Dockerfile, deploy/prometheus,
// deploy/grafana and the config schema together.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../../shared/config/index.js';
import { ROOT } from './k8s-helpers.js';

interface Instruction {
  cmd: string;
  args: string;
  line: number;
}
interface Stage {
  name: string;
  from: string;
  body: Instruction[];
}

/** Dockerfile → instructions (comments dropped, `\` continuations joined; parser directives are comments here). */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let l = lines[i];
    if (/^\s*(#|$)/.test(l)) continue;
    while (/\\\s*$/.test(l) && i + 1 < lines.length) {
      l = l.replace(/\\\s*$/, ' ');
      i++;
      if (!/^\s*#/.test(lines[i])) l += lines[i];
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(l);
    assert.ok(m, `Dockerfile line ${start + 1}: not an instruction: ${l}`);
    out.push({ cmd: m[1].toUpperCase(), args: m[2].trim().replace(/\s+/g, ' '), line: start + 1 });
  }
  return out;
}

const KNOWN = new Set(['FROM', 'ARG', 'ENV', 'RUN', 'COPY', 'ADD', 'WORKDIR', 'USER', 'EXPOSE', 'ENTRYPOINT', 'CMD', 'LABEL', 'VOLUME', 'HEALTHCHECK', 'SHELL', 'STOPSIGNAL', 'ONBUILD']);

function stagesOf(ins: Instruction[]): { stages: Stage[]; globalArgs: Map<string, string> } {
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const i of ins) {
    assert.ok(KNOWN.has(i.cmd), `Dockerfile line ${i.line}: unknown instruction ${i.cmd}`);
    if (i.cmd === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(i.args);
      assert.ok(m, `Dockerfile line ${i.line}: FROM image [AS name]`);
      const from = m[1].replace(/\$\{(\w+)\}/g, (w, a: string) => globalArgs.get(a) ?? w);
      stages.push({ name: m[2] ?? String(stages.length), from, body: [] });
    } else if (stages.length === 0) {
      assert.equal(i.cmd, 'ARG', `Dockerfile line ${i.line}: only ARG may precede the first FROM`);
      const [k, v] = i.args.split('=');
      globalArgs.set(k, v ?? '');
    } else {
      stages.at(-1)!.body.push(i);
    }
  }
  return { stages, globalArgs };
}

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const ins = instructions(dockerfile);
const { stages, globalArgs } = stagesOf(ins);
const stage = (name: string) => {
  const s = stages.find((x) => x.name === name);
  assert.ok(s, `stage ${name} (have ${stages.map((x) => x.name).join(', ')})`);
  return s;
};
const runs = (s: Stage) => s.body.filter((i) => i.cmd === 'RUN').map((i) => i.args).join(' && ');
/** A stage's effective value of a directive inherited through FROM <stage>. */
function lineage(s: Stage): Stage[] {
  const parent = stages.find((x) => x.name === s.from);
  return parent ? [...lineage(parent), s] : [s];
}
function last(s: Stage, cmd: string): string | undefined {
  return lineage(s).flatMap((x) => x.body).filter((i) => i.cmd === cmd).at(-1)?.args;
}
function envOf(s: Stage): Map<string, string> {
  const env = new Map<string, string>();
  for (const i of lineage(s).flatMap((x) => x.body).filter((x) => x.cmd === 'ENV')) {
    for (const m of i.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env.set(m[1], m[2].replace(/^"|"$/g, ''));
  }
  return env;
}
function exposed(s: Stage): Set<number> {
  const ports = new Set<number>();
  for (const i of lineage(s).flatMap((x) => x.body).filter((x) => x.cmd === 'EXPOSE')) {
    for (const p of i.args.split(' ')) {
      const [a, b] = p.replace(/\/tcp$/, '').split('-').map(Number);
      for (let q = a; q <= (b ?? a); q++) ports.add(q);
    }
  }
  return ports;
}
/** COPY instructions of a stage: sources, destination and --from. */
function copies(s: Stage): Array<{ from?: string; srcs: string[]; dest: string }> {
  return s.body
    .filter((i) => i.cmd === 'COPY')
    .map((i) => {
      const parts = i.args.split(' ');
      const opts = parts.filter((p) => p.startsWith('--'));
      const rest = parts.filter((p) => !p.startsWith('--'));
      const from = opts.find((o) => o.startsWith('--from='))?.slice('--from='.length);
      return { from, srcs: rest.slice(0, -1), dest: rest.at(-1)! };
    });
}

const RUNTIMES = ['cpu', 'gpu'] as const;

test('Dockerfile: build, cpu and gpu stages on the required bases; cpu is the default (last) target', () => {
  assert.match(stage('build').from, /^node:20-bookworm$/);
  assert.match(runs(stage('build')), /npm ci\b/);
  assert.match(runs(stage('build')), /tsc -p tsconfig\.json/);
  assert.match(stage('cpu').from, /^node:20-bookworm-slim$/);
  assert.equal(stages.at(-1)!.name, 'cpu', '`docker build .` without --target gives the cpu image');
  const cuda = lineage(stage('gpu'))[0].from;
  assert.match(cuda, /^nvidia\/cuda:11\.\d+(\.\d+)?-cudnn8-runtime-ubuntu\d+\.\d+$/, `gpu base ${cuda}`);
  // tfjs-node-gpu@4.22.0 installed on the CUDA base (its install downloads libtensorflow), deduped onto our tfjs.
  const gpuDeps = stage('gpu-deps');
  assert.equal(lineage(gpuDeps)[0].from, cuda);
  const version = globalArgs.get('TFJS_NODE_GPU_VERSION');
  assert.equal(version, '4.22.0');
  assert.match(runs(gpuDeps), /npm install [^&]*"@tensorflow\/tfjs-node-gpu@\$\{TFJS_NODE_GPU_VERSION\}"/);
  assert.ok(gpuDeps.body.some((i) => i.cmd === 'ARG' && i.args === 'TFJS_NODE_GPU_VERSION'), 'the global ARG is re-declared in the stage that uses it');
  assert.equal(envOf(stage('gpu')).get('TF_FORCE_GPU_ALLOW_GROWTH'), 'true');
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
  assert.equal(lock.packages['node_modules/@tensorflow/tfjs'].version, version, 'tfjs-node-gpu pins @tensorflow/tfjs to its own version: ours must match to share one engine');
});

test('Dockerfile: runtimes hold production dependencies and compiled JS only, run as a non-root user', () => {
  assert.match(runs(stage('deps')), /npm ci --omit=dev/);
  assert.match(runs(stage('gpu-deps')), /npm ci --omit=dev/);
  for (const name of RUNTIMES) {
    const s = stage(name);
    const user = last(s, 'USER');
    assert.ok(user, `${name}: USER set`);
    assert.match(user, /^[1-9]\d*(:\d+)?$/, `${name}: numeric non-root USER (Kubernetes runAsNonRoot can verify it), got ${user}`);
    assert.equal(user.split(':')[0], '10001', `${name}: the uid the manifests' securityContext names`);
    assert.equal(last(s, 'ENTRYPOINT'), '["node", "/app/dist/coordinator/cli/index.js"]', `${name}: ENTRYPOINT is sigmatrain`);
    const ports = exposed(s);
    for (const p of [29400, 9400, 9401, 9408]) assert.ok(ports.has(p), `${name}: EXPOSE ${p}`);
    for (const c of copies(s)) {
      if (c.from) {
        assert.ok(c.srcs.every((src) => /^\/(src\/dist\/(coordinator|worker|shared)|app\/node_modules)$/.test(src)), `${name}: COPY --from=${c.from} ${c.srcs.join(' ')}`);
      } else {
        assert.ok(c.srcs.every((src) => ['package.json', 'configs'].includes(src)), `${name}: only package.json and configs from the context, got ${c.srcs.join(' ')}`);
      }
    }
    const nm = copies(s).find((c) => c.dest.includes('node_modules'))!;
    assert.ok(['deps', 'gpu-deps'].includes(nm.from!), `${name}: node_modules from a production-deps stage`);
  }
  for (const s of stages) for (const c of copies(s)) if (c.from) assert.ok(stages.findIndex((x) => x.name === c.from) < stages.indexOf(s), `COPY --from=${c.from} names an earlier stage`);
});

/** Docker's .dockerignore semantics, enough for our patterns: last matching pattern wins; a match on a parent counts. */
function dockerignored(path: string, patterns: string[]): boolean {
  const toRe = (p: string) =>
    new RegExp(`^${p.replace(/\/$/, '').replace(/[.+^$()|[\]{}]/g, '\\$&').replace(/\*\*\//g, '\u0000').replace(/\*\*/g, '.*').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]').replace(/\u0000/g, '(.*/)?')}$`);
  const parts = path.split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let excluded = false;
  for (const raw of patterns) {
    const neg = raw.startsWith('!');
    const re = toRe(neg ? raw.slice(1) : raw);
    if (prefixes.some((p) => re.test(p))) excluded = !neg;
  }
  return excluded;
}

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
const contextSources = [...new Set(stages.flatMap((s) => copies(s).filter((c) => !c.from).flatMap((c) => c.srcs)))];

test('.dockerignore lets in every COPY source and keeps node_modules, dist, runs, data, .git, test out', () => {
  for (const src of contextSources) {
    assert.ok(existsSync(join(ROOT, src)), `COPY source ${src} exists`);
    const files = statSync(join(ROOT, src)).isDirectory() ? walk(join(ROOT, src)).map((f) => relative(ROOT, f)) : [src];
    for (const f of files) assert.equal(dockerignored(f, ignore), false, `${f} (COPY ${src}) is excluded by .dockerignore`);
  }
  for (const p of ['node_modules/yaml/package.json', 'dist/coordinator/cli/index.js', 'runs/x/ledger.jsonl', 'data/shapes16/train/a.png', '.git/HEAD', 'test/unit/x.test.ts', 'deploy/compose.yaml', 'README.md']) {
    assert.equal(dockerignored(p, ignore), true, `${p} stays out of the build context`);
  }
});

test('the build stage compiles from its COPY sources alone, and the runtime layout starts with production dependencies', { timeout: 180_000 }, () => {
  const ctx = mkdtempSync(join(tmpdir(), 'sgt-docker-'));
  try {
    // The build stage: its context COPYs (after .dockerignore), then tsc — with the dev dependencies npm ci installs.
    const buildSrcs = copies(stage('build')).filter((c) => !c.from).flatMap((c) => c.srcs);
    for (const src of buildSrcs) {
      const files = statSync(join(ROOT, src)).isDirectory() ? walk(join(ROOT, src)).map((f) => relative(ROOT, f)) : [src];
      for (const f of files.filter((x) => !dockerignored(x, ignore))) {
        mkdirSync(dirname(join(ctx, 'src', f)), { recursive: true });
        cpSync(join(ROOT, f), join(ctx, 'src', f));
      }
    }
    symlinkSync(join(ROOT, 'node_modules'), join(ctx, 'src/node_modules'));
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: join(ctx, 'src'), stdio: 'pipe' });
    // The runtime stage's /app: compiled coordinator, worker and shared, package.json ("type": "module"), configs.
    const app = join(ctx, 'app');
    for (const d of ['coordinator', 'worker', 'shared']) cpSync(join(ctx, 'src/dist', d), join(app, 'dist', d), { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(app, 'package.json'));
    cpSync(join(ROOT, 'configs'), join(app, 'configs'), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'));
    const help = execFileSync(process.execPath, [join(app, 'dist/coordinator/cli/index.js'), '--help'], { encoding: 'utf8' });
    assert.match(help, /usage: sigmatrain <command>/);
    // Every package the compiled runtime imports by a literal name is a production dependency, an optional one
    // (`npm ci --omit=dev` installs those too; the code that imports them handles their absence), or a builtin.
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; optionalDependencies?: Record<string, string> };
    const allowed = new Set([...Object.keys(pkg.dependencies), ...Object.keys(pkg.optionalDependencies ?? {}), ...builtinModules]);
    const missing = new Set<string>();
    for (const f of walk(join(app, 'dist')).filter((x) => x.endsWith('.js'))) {
      for (const m of readFileSync(f, 'utf8').matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)['"]([^'"]+)['"]/g)) {
        const spec = m[1];
        if (spec.startsWith('.') || spec.startsWith('node:') || !/^(@[\w.-]+\/)?[\w.-]+(\/|$)/.test(spec)) continue; // relative, builtin, or not a module name
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
        if (!allowed.has(name)) missing.add(`${name} (${relative(app, f)})`);
      }
    }
    assert.deepEqual([...missing], [], 'imported by the runtime but not in dependencies');
    // The coordinator and the worker runtime load with nothing from test/ or deploy/.
    execFileSync(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(join(app, 'dist/coordinator/coordinator.js'))}); await import(${JSON.stringify(join(app, 'dist/worker/runtime.js'))});`], { stdio: 'pipe' });
  } finally {
    rmSync(ctx, { recursive: true, force: true });
  }
});

// ---- deploy/compose.yaml ---------------------------------------------------------------------------------------

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string; target: string };
  command?: string[];
  network_mode?: string;
  volumes?: string[];
  ports?: string[];
  environment?: Record<string, string>;
}
const DEPLOY = join(ROOT, 'deploy');
const compose = parse(readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8')) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const svc = compose.services;

/** A command's --flags as name → value (the first element is the subcommand). */
function cmdFlags(cmd: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 1; i < cmd.length; i += 2) m.set(cmd[i].replace(/^--/, ''), cmd[i + 1]);
  return m;
}
const CONFIG_KEY = /^[a-z]+\.[A-Za-z.]+$/;
function configArgs(cmd: string[]): string[] {
  return [...cmdFlags(cmd)].filter(([k]) => CONFIG_KEY.test(k)).flatMap(([k, v]) => [`--${k}`, v]);
}
/** Maps a path inside the image (/app/configs/x) to the repository. */
const inRepo = (p: string) => join(ROOT, p.replace(/^\/app\//, ''));
function mountOf(s: Service, target: string): string | undefined {
  return s.volumes?.map((v) => v.split(':')).find(([, t]) => t === target)?.[0];
}

test('compose: coordinator + launch(2 workers) from the cpu target, sharing Prometheus\'s network; flags load', () => {
  assert.deepEqual(Object.keys(svc).sort(), ['coordinator', 'grafana', 'prometheus', 'workers']);
  for (const name of ['coordinator', 'workers']) {
    const s = svc[name];
    assert.ok(s.build, `${name} builds the image`);
    assert.equal(join(DEPLOY, s.build.context, s.build.dockerfile), join(ROOT, 'Dockerfile'));
    stage(s.build.target);
    assert.equal(s.network_mode, 'service:prometheus', `${name} shares the Prometheus container's network`);
  }
  const coord = svc.coordinator.command!;
  const launch = svc.workers.command!;
  assert.equal(coord[0], 'coordinator');
  assert.equal(launch[0], 'launch');
  const cf = cmdFlags(coord);
  const lf = cmdFlags(launch);
  const nproc = Number(lf.get('nproc-per-node'));
  assert.equal(nproc, 2);
  assert.equal(Number(cf.get('workers')), nproc, 'the coordinator waits for the launcher\'s workers');
  const cc = loadConfig({ file: inRepo(cf.get('config')!), args: configArgs(coord), env: {} });
  const wc = loadConfig({ file: inRepo(lf.get('config')!), args: [...configArgs(launch), '--dist.coordinator', lf.get('coordinator')!], env: {} });
  assert.equal(lf.get('coordinator'), `127.0.0.1:${cc.dist.coordinator.split(':')[1]}`);
  assert.deepStrictEqual(cc, wc, 'one config for all: the coordinator admits only workers whose config hash equals its own');
  // Same run dir path in both (rank 0 writes checkpoints into the coordinator's --run-dir), on a named volume.
  const runs = mountOf(svc.coordinator, '/runs');
  assert.ok(runs && compose.volumes[runs] !== undefined);
  assert.equal(mountOf(svc.workers, '/runs'), runs);
  assert.ok(cf.get('run-dir')!.startsWith('/runs/'));
  assert.ok(wc.data.root.startsWith('/data/') && mountOf(svc.workers, '/data'), 'the generated data set is on a writable volume');

  // deploy/prometheus/prometheus.yml, mounted unchanged, scrapes exactly these processes on loopback.
  const prom = svc.prometheus;
  const confDir = mountOf(prom, '/etc/prometheus')!;
  assert.equal(join(DEPLOY, confDir), join(DEPLOY, 'prometheus'));
  assert.ok(prom.command!.includes('--config.file=/etc/prometheus/prometheus.yml'));
  const pconf = parse(readFileSync(join(DEPLOY, confDir, 'prometheus.yml'), 'utf8')) as {
    rule_files: string[];
    scrape_configs: Array<{ static_configs: Array<{ targets: string[] }> }>;
  };
  const targets = new Set(pconf.scrape_configs.flatMap((j) => j.static_configs.flatMap((c) => c.targets)));
  assert.ok(targets.has(`127.0.0.1:${cc.metrics.port}`), 'the coordinator\'s /metrics is a target');
  for (let r = 0; r < nproc; r++) assert.ok(targets.has(`127.0.0.1:${wc.metrics.port + 1 + r}`), `worker local rank ${r} is a target`);
  for (const g of pconf.rule_files) {
    const dir = join(DEPLOY, confDir, dirname(g));
    const re = new RegExp(`^${g.split('/').at(-1)!.replace(/\./g, '\\.').replace(/\*/g, '.*')}$`);
    assert.ok(readdirSync(dir).some((f) => re.test(f)), `rule_files ${g} matches a file`);
  }
  assert.ok(prom.ports!.some((p) => p.endsWith(':9090')), 'the Prometheus UI is published');
});

test('compose: Grafana gets the provisioned data source (prometheus:9090) and the dashboard where the provider looks', () => {
  const g = svc.grafana;
  const provisioning = mountOf(g, '/etc/grafana/provisioning')!;
  const provider = parse(readFileSync(join(DEPLOY, provisioning, 'dashboards/sigmatrain.yml'), 'utf8')) as { providers: Array<{ options: { path: string } }> };
  const dashPath = provider.providers[0].options.path;
  const dashDir = mountOf(g, dashPath);
  assert.ok(dashDir, `a volume is mounted at the provider's path ${dashPath}`);
  assert.ok(existsSync(join(DEPLOY, dashDir, 'sigmatrain.json')));
  const home = g.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
  assert.equal(home, `${dashPath}/sigmatrain.json`);
  const ds = parse(readFileSync(join(DEPLOY, provisioning, 'datasources/sigmatrain.yml'), 'utf8')) as { datasources: Array<{ url: string; isDefault?: boolean }> };
  const url = new URL(ds.datasources.find((d) => d.isDefault)!.url);
  assert.ok(svc[url.hostname], `the default data source's host ${url.hostname} is a compose service`);
  assert.ok(svc[url.hostname].command!.some((c) => c.endsWith(`:${url.port}`)), `Prometheus listens on ${url.port}`);
});
