// Tests for ImageNet indexing on a tiny generated tree (shapes JPEGs renamed to wnids): train folders, flat val
// labelled by LOC_val_solution.csv (root, val/ and Kaggle locations), val as class folders giving the same index,
// and SGT_DATA_INVALID errors naming the file/row for a missing CSV, unknown wnid, missing or unlisted image.

import { strict as assert } from 'node:assert';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SigmaError } from '../../../../shared/errors.js';
import { loadBatch } from '../../../../worker/data/imagefolder.js';
import { indexImageNet, parseValSolution } from '../../../../worker/data/imagenet.js';
import { generateShapes } from '../../../../worker/data/synthetic.js';

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'sgt-inet-'));
after(() => fs.rm(tmp, { recursive: true, force: true }));

// Shape class → wnid; sorted wnids (square, triangle, circle) differ from the shapes' own order.
const WNID: Record<string, string> = { circle: 'n03000003', square: 'n01000001', triangle: 'n02000002' };
const root = path.join(tmp, 'inet'); // flat val + CSV at the root
const byDirs = path.join(tmp, 'inet-dirs'); // val as class folders
const valNames: { name: string; wnid: string }[] = [];
let csv = '';

function isDataError(...needles: string[]) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof SigmaError, String(e));
    assert.equal(e.code, 'SGT_DATA_INVALID');
    for (const n of needles) assert.ok(e.message.includes(n), `"${e.message}" should name ${n}`);
    return true;
  };
}

before(async () => {
  const gen = path.join(tmp, 'gen');
  await generateShapes({ root: gen, size: 16, classes: 3, trainPerClass: 2, valPerClass: 2, seed: 5, format: 'jpeg' });
  let v = 0;
  const rows: string[] = [];
  for (const cls of ['circle', 'square', 'triangle']) {
    const wnid = WNID[cls]!;
    for (const split of ['train', 'val'] as const) {
      const files = (await fs.readdir(path.join(gen, split, cls))).sort();
      for (const [i, f] of files.entries()) {
        const src = path.join(gen, split, cls, f);
        if (split === 'train') {
          for (const r of [root, byDirs]) {
            await fs.mkdir(path.join(r, 'train', wnid), { recursive: true });
            await fs.copyFile(src, path.join(r, 'train', wnid, `${wnid}_${i}.JPEG`));
          }
        } else {
          // Val numbering interleaves classes, as in ILSVRC2012.
          const name = `ILSVRC2012_val_${String(7 - ++v).padStart(8, '0')}`;
          valNames.push({ name, wnid });
          await fs.mkdir(path.join(root, 'val'), { recursive: true });
          await fs.copyFile(src, path.join(root, 'val', `${name}.JPEG`));
          await fs.mkdir(path.join(byDirs, 'val', wnid), { recursive: true });
          await fs.copyFile(src, path.join(byDirs, 'val', wnid, `${name}.JPEG`));
          rows.push(`${name},${wnid} 1 2 10 12 ${wnid} 3 3 9 9 `);
        }
      }
    }
  }
  rows.reverse();
  csv = `ImageId,PredictionString\r\n${rows.join('\r\n')}\r\n`;
  await fs.writeFile(path.join(root, 'LOC_val_solution.csv'), csv);
});

describe('indexImageNet', () => {
  it('train: classes are the sorted wnids, labels follow them', async () => {
    const idx = await indexImageNet(root, 'train');
    assert.deepEqual(idx.classes, ['n01000001', 'n02000002', 'n03000003']);
    assert.equal(idx.paths.length, 6);
    assert.deepEqual([...idx.labels], [0, 0, 1, 1, 2, 2]);
    assert.ok(idx.paths[0]!.endsWith(path.join('train', 'n01000001', 'n01000001_0.JPEG')));
  });

  it('flat val + LOC_val_solution.csv: labels from the first wnid of PredictionString, ordered (label, name)', async () => {
    const idx = await indexImageNet(root, 'val');
    assert.deepEqual(idx.classes, ['n01000001', 'n02000002', 'n03000003']);
    assert.equal(idx.paths.length, 6);
    for (let i = 0; i < 6; i++) {
      const name = path.basename(idx.paths[i]!, '.JPEG');
      const want = valNames.find((v) => v.name === name)!;
      assert.equal(idx.classes[idx.labels[i]!], want.wnid, name);
      assert.equal(idx.bytes[i], (await fs.stat(idx.paths[i]!)).size);
    }
    assert.deepEqual([...idx.labels], [0, 0, 1, 1, 2, 2]);
    // The existing decoder works on this index unchanged.
    const b = await loadBatch(idx, [0, 5], { size: 8, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
    assert.equal(b.n, 2);
  });

  it('val as class folders gives the same samples, labels and order as the flat layout', async () => {
    const flat = await indexImageNet(root, 'val');
    const dirs = await indexImageNet(byDirs, 'val');
    assert.deepEqual(dirs.classes, flat.classes);
    assert.deepEqual(dirs.labels, flat.labels);
    assert.deepEqual(dirs.paths.map((p) => path.basename(p)), flat.paths.map((p) => path.basename(p)));
  });

  it('finds the CSV in val/ and in the Kaggle tree (three levels above ILSVRC/Data/CLS-LOC)', async () => {
    const inVal = path.join(tmp, 'inval');
    await fs.mkdir(inVal);
    await fs.symlink(path.join(root, 'train'), path.join(inVal, 'train'));
    await fs.cp(path.join(root, 'val'), path.join(inVal, 'val'), { recursive: true });
    await fs.writeFile(path.join(inVal, 'val', 'LOC_val_solution.csv'), csv);
    assert.equal((await indexImageNet(inVal, 'val')).paths.length, 6);

    const kaggle = path.join(tmp, 'kaggle');
    const clsLoc = path.join(kaggle, 'ILSVRC', 'Data', 'CLS-LOC');
    await fs.mkdir(clsLoc, { recursive: true });
    await fs.symlink(path.join(root, 'train'), path.join(clsLoc, 'train'));
    await fs.symlink(path.join(root, 'val'), path.join(clsLoc, 'val'));
    await fs.writeFile(path.join(kaggle, 'LOC_val_solution.csv'), csv);
    assert.deepEqual((await indexImageNet(clsLoc, 'val')).labels, (await indexImageNet(root, 'val')).labels);
  });

  it('names the searched paths when the CSV is missing', async () => {
    const noCsv = path.join(tmp, 'nocsv');
    await fs.mkdir(noCsv);
    await fs.symlink(path.join(root, 'train'), path.join(noCsv, 'train'));
    await fs.symlink(path.join(root, 'val'), path.join(noCsv, 'val'));
    await assert.rejects(indexImageNet(noCsv, 'val'), isDataError('LOC_val_solution.csv', path.join(noCsv, 'LOC_val_solution.csv')));
    await assert.rejects(indexImageNet(root, 'val', { valLabels: path.join(tmp, 'absent.csv') }), isDataError(path.join(tmp, 'absent.csv')));
  });

  it('names the row for an unknown wnid and the path for a listed-but-missing image', async () => {
    const bad = path.join(tmp, 'bad.csv');
    const lines = csv.trim().split('\r\n');
    await fs.writeFile(bad, [...lines, 'ILSVRC2012_val_00000099,n09999999 1 1 2 2'].join('\n'));
    await assert.rejects(indexImageNet(root, 'val', { valLabels: bad }), isDataError(bad, 'line 8', 'n09999999'));
    await fs.writeFile(bad, [...lines, `ILSVRC2012_val_00000099,${WNID.circle} 1 1 2 2`].join('\n'));
    await assert.rejects(indexImageNet(root, 'val', { valLabels: bad }), isDataError('line 8', path.join(root, 'val', 'ILSVRC2012_val_00000099.JPEG')));
    await fs.writeFile(bad, lines.slice(0, 6).join('\n')); // last image unlisted
    await assert.rejects(indexImageNet(root, 'val', { valLabels: bad }), isDataError('has no row', bad));
  });

  it('rejects a val class folder that is not a train class, and a val/ with both files and folders', async () => {
    const odd = path.join(tmp, 'odd');
    await fs.cp(byDirs, odd, { recursive: true });
    await fs.mkdir(path.join(odd, 'val', 'n04000004'));
    await assert.rejects(indexImageNet(odd, 'val'), isDataError(path.join(odd, 'val', 'n04000004')));
    await fs.rm(path.join(odd, 'val', 'n04000004'), { recursive: true });
    await fs.copyFile(path.join(root, 'val', `${valNames[0]!.name}.JPEG`), path.join(odd, 'val', 'stray.JPEG'));
    await assert.rejects(indexImageNet(odd, 'val'), isDataError('both images'));
  });

  it('parseValSolution: header columns found by name, BOM and blank lines tolerated, errors name the line', () => {
    const m = parseValSolution('\uFEFFPredictionString,ImageId\nn01 1 2 3 4,a\n\nn02 5 6 7 8,b\n');
    assert.deepEqual([...m], [['a', { wnid: 'n01', line: 2 }], ['b', { wnid: 'n02', line: 4 }]]);
    assert.throws(() => parseValSolution('Id,Label\na,n01'), isDataError('line 1', 'ImageId'));
    assert.throws(() => parseValSolution('ImageId,PredictionString\na,n01 1\na,n02 2', 'x.csv'), isDataError('x.csv line 3', 'twice'));
    assert.throws(() => parseValSolution('ImageId,PredictionString\na,', 'x.csv'), isDataError('line 2'));
  });
});
