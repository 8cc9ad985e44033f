// The Prometheus test harness (test/integration/helpers/prometheus.ts) against a real `prometheus`: it scrapes a tiny
// node:http exporter, answers queries, and stop() leaves no process or directory behind.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startPrometheus, type PrometheusHandle } from '../../integration/helpers/prometheus.js';

let scrapes = 0;
/** Fixed exposition text, except steps_total which advances by 10 per scrape (so rate() has something to see). */
function exposition(): string {
  scrapes++;
  return [
    '# HELP sigmatrain_loss Training loss of the last step.',
    '# TYPE sigmatrain_loss gauge',
    'sigmatrain_loss{rank="0",role="worker"} 1.5',
    '# HELP sigmatrain_steps_total Steps completed by this worker.',
    '# TYPE sigmatrain_steps_total counter',
    `sigmatrain_steps_total{rank="0",role="worker"} ${10 * scrapes}`,
    '',
  ].join('\n');
}

const exporter: Server = createServer((req, res) => {
  if (req.url !== '/metrics') {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(exposition());
});
await new Promise<void>((resolve) => exporter.listen(0, '127.0.0.1', resolve));
const address = `127.0.0.1:${(exporter.address() as AddressInfo).port}`;
after(() => exporter.close());

let prom: PrometheusHandle | undefined;
after(() => prom?.stop()); // also when an assertion below fails

test('Prometheus scrapes a local exporter and the query returns its value', async (t) => {
  const t0 = Date.now();
  prom = await startPrometheus({ targets: [{ job: 'sigmatrain-worker', addresses: [address] }], scrapeIntervalSeconds: 1 });
  const ready = Date.now() - t0;
  const [loss] = await prom.waitFor('sigmatrain_loss', (r) => r.length === 1, 15_000);
  const scraped = Date.now() - t0;
  t.diagnostic(`prometheus ready after ${ready} ms, first sample queryable after ${scraped} ms`);

  assert.equal(loss!.value[1], '1.5');
  assert.deepEqual(loss!.metric, {
    __name__: 'sigmatrain_loss',
    job: 'sigmatrain-worker',
    instance: address,
    rank: '0',
    role: 'worker',
  });
  const [up] = await prom.query(`up{job="sigmatrain-worker"}`);
  assert.equal(up!.value[1], '1');

  // A counter over several scrapes: rate() works, i.e. samples are stored with their scrape times.
  const [inc] = await prom.waitFor('increase(sigmatrain_steps_total[1m])', (r) => r.length === 1 && Number(r[0]!.value[1]) > 0, 15_000);
  assert.ok(Number(inc!.value[1]) >= 10);

  const [scalar] = await prom.query('scalar(sigmatrain_loss) * 2');
  assert.equal(scalar!.value[1], '3');
});

test('a query error carries Prometheus’ message', async () => {
  assert.ok(prom, 'needs the instance of the previous test');
  await assert.rejects(prom.query('sum(rate(sigmatrain_loss[1m])'), /failed: .*(unclosed|parse|expected)/i);
});

test('stop() kills prometheus and removes its directory; a second stop() is a no-op', async () => {
  assert.ok(prom);
  const { pid, dir } = prom;
  assert.ok(existsSync(dir));
  await prom.stop();
  await prom.stop();
  assert.equal(existsSync(dir), false, 'temp dir left behind');
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'prometheus still running');
});

test('a missing binary fails with the install hint', async () => {
  await assert.rejects(
    startPrometheus({ targets: [], binary: '/nonexistent/prometheus' }),
    /not found: .*Debian package 'prometheus'.*\.ci\/run/,
  );
});
