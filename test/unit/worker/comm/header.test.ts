// Unit tests of the data-plane frame header: round trip, size (zeromq copies frames ≤ 128 bytes), validation.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pack } from 'msgpackr';
import { decodeHeader, encodeHeader, type FrameHeader } from '../../../../worker/comm/header.js';

const h: FrameHeader = { gen: 3, op: 'allreduce', seq: 12, step: 5, chunk: 31, from: 2, len: 67_108_864 };

test('header round trip, and stays under the 128-byte copy threshold even with large fields', () => {
  assert.deepEqual(decodeHeader(encodeHeader(h)), h);
  const big = { ...h, gen: 2 ** 40, seq: 2 ** 45, len: 2 ** 50, step: 1000, chunk: 100_000, from: 4095 };
  assert.deepEqual(decodeHeader(encodeHeader(big)), big);
  assert.ok(encodeHeader(big).byteLength <= 128, `${encodeHeader(big).byteLength} bytes`);
});

test('malformed headers are reported, not thrown', () => {
  assert.match(decodeHeader(Buffer.from([0xd9, 0x20, 0x41])) as string, /undecodable/); // truncated str8
  for (const junk of [[0xc1], [0x01], [0xa3, 0x61, 0x62, 0x63], []]) assert.equal(typeof decodeHeader(Buffer.from(junk)), 'string');
  assert.match(decodeHeader(pack([1, 2, 3])) as string, /not a map/);
  assert.match(decodeHeader(pack({ ...h, gen: -1 })) as string, /gen=-1/);
  assert.match(decodeHeader(pack({ ...h, step: 1.5 })) as string, /step=1.5/);
  assert.match(decodeHeader(pack({ ...h, op: 'gather' })) as string, /op="gather"/);
  const { len: _len, ...noLen } = h;
  assert.match(decodeHeader(pack(noLen)) as string, /len=undefined/);
});
