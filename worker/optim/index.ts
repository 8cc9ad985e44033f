// The optimizers, schedules, clipping and weight averaging the trainer uses, from one import.
export * from './optimizer.js';
export { AdamW, type AdamWGroupOptions } from './adamw.js';
export { Sgd, type SgdOptions } from './sgd.js';
export { Lars, type LarsOptions } from './lars.js';
export { Lamb, type LambOptions } from './lamb.js';
export { Adagrad, type AdagradOptions } from './adagrad.js';
export * from './factory.js';
export * from './schedule.js';
export * from './clip.js';
export { Ema } from './ema.js';
