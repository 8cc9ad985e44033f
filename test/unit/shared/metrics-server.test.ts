// shared/metrics/server: a real HTTP scrape of /metrics on an ephemeral port, /healthz, 404/405, and the
// port-in-use error that names the port and the config key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRegistry, serveMetrics, WorkerMetrics } from '../../../shared/metrics/index.js';
import { SigmaError } from '../../../shared/errors.js';

test('GET /metrics returns the text exposition with our series; /healthz 200; others 404/405', async () => {
  const registry = createRegistry({ role: 'worker', rank: 0 });
  const w = new WorkerMetrics(registry, { perHead: true });
  w.recordStep({
    loss: 0.5, lr: 0.1, gradNorm: 1, temperature: 1, samples: 8, tokens: 8, entropy: [[1.25, 2]],
    phases: { forward_backward: 0.2 }, allreduceBytes: 0, allreduceSeconds: 0,
  });
  const server = await serveMetrics(registry, { host: '127.0.0.1', port: 0 });
  try {
    assert.ok(server.port > 0);
    assert.equal(server.url, `http://127.0.0.1:${server.port}/metrics`);
    const res = await fetch(server.url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), registry.contentType);
    const body = await res.text();
    assert.match(body, /^# TYPE sigmatrain_steps_total counter$/m);
    assert.match(body, /^sigmatrain_steps_total\{role="worker",rank="0"\} 1$/m);
    assert.match(body, /^sigmatrain_attention_entropy_nats\{layer="0",head="0",attn="self",role="worker",rank="0"\} 1\.25$/m);
    assert.match(body, /^sigmatrain_step_phase_duration_seconds_count\{[^}]*phase="forward_backward"[^}]*\} 1$/m);

    const base = `http://127.0.0.1:${server.port}`;
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 200);
    await health.text();
    const missing = await fetch(`${base}/nope`);
    assert.equal(missing.status, 404);
    await missing.text();
    const post = await fetch(server.url, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await post.text();
    const query = await fetch(`${server.url}?name[]=x`);
    assert.equal(query.status, 200);
    await query.text();
  } finally {
    await server.close();
    await server.close(); // idempotent
  }
});

test('a port already in use is a SigmaError naming the port and metrics.port', async () => {
  const registry = createRegistry({ role: 'worker', rank: 0 });
  const first = await serveMetrics(registry, { port: 0 }); // default host 0.0.0.0
  try {
    assert.equal(first.url, `http://127.0.0.1:${first.port}/metrics`);
    await assert.rejects(serveMetrics(registry, { port: first.port }), (e: unknown) => {
      assert.ok(e instanceof SigmaError);
      assert.equal(e.code, 'SGT_METRICS');
      assert.match(e.message, new RegExp(`port ${first.port} is already in use`));
      assert.match(e.message, /metrics\.port/);
      assert.match(e.message, /SIGMATRAIN_METRICS_PORT/);
      return true;
    });
  } finally {
    await first.close();
  }
  await assert.rejects(serveMetrics(registry, { port: 70000 }), /SGT_METRICS: metrics port 70000 is not a TCP port/);
});
