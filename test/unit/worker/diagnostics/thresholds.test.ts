// worker/diagnostics/thresholds.ts: the paper's stability thresholds, defaults and the documented approximations.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { stabilityThreshold } from '../../../../worker/diagnostics/thresholds.js';

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) <= 1e-12 * Math.abs(b), `${a} vs ${b}`);

test('GD: 2/η; SGD without momentum the same', () => {
  close(stabilityThreshold({ optimizer: 'gd', lr: 0.01 }), 200);
  close(stabilityThreshold({ optimizer: 'sgd', lr: 0.5 }), 4);
});

test('momentum β: (2+2β)/η (β = 0.9 → 3.8/η); SGD with momentum likewise', () => {
  close(stabilityThreshold({ optimizer: 'momentum', lr: 0.1, momentum: 0.9 }), 38);
  close(stabilityThreshold({ optimizer: 'momentum', lr: 0.1 }), 38); // default β = 0.9
  close(stabilityThreshold({ optimizer: 'momentum', lr: 0.2, momentum: 0.5 }), 15);
  close(stabilityThreshold({ optimizer: 'sgd', lr: 0.2, momentum: 0.5 }), 15);
});

test('AdamW with a frozen preconditioner: (2+2β₁)/((1−β₁)η) = 38/η for β₁ = 0.9', () => {
  close(stabilityThreshold({ optimizer: 'adamw', lr: 1e-3, beta1: 0.9 }), 38_000);
  close(stabilityThreshold({ optimizer: 'adamw', lr: 3e-4 }), 38 / 3e-4);
  close(stabilityThreshold({ optimizer: 'adamw', lr: 1, beta1: 0.5 }), 6);
  close(stabilityThreshold({ optimizer: 'adamw', lr: 1, beta1: 0 }), 2); // β₁ = 0: back to GD's 2/η
});

test('approximations: LARS as momentum SGD, LAMB as AdamW, Adagrad as GD', () => {
  close(stabilityThreshold({ optimizer: 'lars', lr: 0.1, momentum: 0.9 }), stabilityThreshold({ optimizer: 'momentum', lr: 0.1, momentum: 0.9 }));
  close(stabilityThreshold({ optimizer: 'lamb', lr: 2e-3, beta1: 0.8 }), stabilityThreshold({ optimizer: 'adamw', lr: 2e-3, beta1: 0.8 }));
  close(stabilityThreshold({ optimizer: 'adagrad', lr: 0.05 }), 40);
});

test('invalid inputs are rejected, naming the value', () => {
  assert.throws(() => stabilityThreshold({ optimizer: 'gd', lr: 0 }), /lr .* got 0/);
  assert.throws(() => stabilityThreshold({ optimizer: 'adamw', lr: NaN }), /got NaN/);
  assert.throws(() => stabilityThreshold({ optimizer: 'adamw', lr: 1e-3, beta1: 1 }), /beta1 .* got 1/);
  assert.throws(() => stabilityThreshold({ optimizer: 'momentum', lr: 1e-3, momentum: -0.1 }), /momentum .* got -0.1/);
  assert.throws(() => stabilityThreshold({ optimizer: 'rmsprop' as 'gd', lr: 1 }), /unknown optimizer rmsprop/);
});
