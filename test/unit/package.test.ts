// The package as a user installs and runs it (issue 11 items 7 and 9): the bin is executable after every build, and
// every locked dependency supports every Node version our `engines` admits (else `npm install` warns EBADENGINE).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import semver from 'semver';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { bin: Record<string, string>; engines: { node: string }; scripts: Record<string, string> };

test('the bin is executable and starts with a node shebang (npx sigmatrain after npm test / npm run build)', () => {
  for (const [name, rel] of Object.entries(pkg.bin)) {
    const path = `${root}${rel}`;
    assert.doesNotThrow(() => accessSync(path, constants.X_OK), `${name} (${rel}) is not executable: mode ${(statSync(path).mode & 0o777).toString(8)}`);
    assert.match(readFileSync(path, 'utf8').split('\n')[0], /^#!\/usr\/bin\/env node$/, `${rel} has no node shebang`);
  }
  // The build itself restores the bit: a rebuild (rm -rf dist, tsc) would otherwise drop it.
  assert.match(pkg.scripts.build, /chmodSync\('dist\/coordinator\/cli\/index\.js',\s*0o755\)/);
});

test('every locked package supports every Node version package.json engines admits', () => {
  const lock = JSON.parse(readFileSync(`${root}package-lock.json`, 'utf8')) as { packages: Record<string, { engines?: { node?: string } | string[]; optional?: boolean }> };
  assert.ok(semver.validRange(pkg.engines.node), `engines.node ${pkg.engines.node} is not a range`);
  assert.ok(semver.satisfies(process.version, pkg.engines.node), `this Node ${process.version} is outside engines ${pkg.engines.node}`);
  const bad: string[] = [];
  for (const [path, meta] of Object.entries(lock.packages)) {
    const node = meta.engines && !Array.isArray(meta.engines) ? meta.engines.node : undefined;
    if (!path || !node) continue;
    if (!semver.subset(pkg.engines.node, node)) bad.push(`${path.replace(/^node_modules\//, '')} needs node ${node}`);
  }
  assert.deepEqual(bad, [], `packages that need more than engines ${pkg.engines.node}: ${bad.join('; ')}`);
});
