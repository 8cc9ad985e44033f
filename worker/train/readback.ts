// Named tensors to host arrays with ONE packed device→host transfer (concatenated on the device, one await data()).
import * as tf from '@tensorflow/tfjs';

export async function readNamed(tensors: ReadonlyMap<string, tf.Tensor>): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  if (tensors.size === 0) return out;
  const names = [...tensors.keys()];
  const all = tf.tidy(() => tf.concat(names.map((n) => tf.cast(tensors.get(n)!, 'float32').reshape([-1]))));
  const flat = (await all.data()) as Float32Array; // a fresh array: views into it stay valid
  all.dispose();
  let o = 0;
  for (const n of names) {
    const size = tensors.get(n)!.size;
    out.set(n, flat.subarray(o, o + size));
    o += size;
  }
  return out;
}
