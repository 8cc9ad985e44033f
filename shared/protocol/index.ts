// Control protocol: message schemas and the codec.
export * from './messages.js';
export { encode, decode, type Decoded } from './codec.js';
