// Public surface of the data plane: ring collectives, gradient buckets, and the comm error type.

export { Ring, DEFAULT_CHUNK_BYTES, DEFAULT_HWM, DEFAULT_TIMEOUT_MS, RING_MALLOC_ENV } from './ring.js';
export type { RingOptions, RingStats, CommLogger } from './ring.js';
export { BucketReducer, DEFAULT_BUCKET_BYTES, packBucket, planBuckets, planBucketsFor, unpackBucket } from './buckets.js';
export type { AllReducer, Bucket, BucketEntry, BucketPlan } from './buckets.js';
export { CommError, isCommError } from './errors.js';
export type { CommErrorDetails, CommFailure } from './errors.js';
