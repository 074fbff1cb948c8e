/**
 * Helper thread of ParallelKernels (parallel-kernels.ts): waits on the shared control block,
 * runs its share of rows of each matmul on shared arrays with the optimised kernels, and
 * reports completion. Arrays are registered over a message port and picked up synchronously
 * (receiveMessageOnPort) before each command, so the caller never waits on an event loop.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import type { FloatArray } from './llama-weights.js';
import { optimisedKernels } from './kernels-optimised.js';
import { CONTROL, OP, rowRange, type SharedArrayMessage } from './parallel-protocol.js';

const { control, port, index } = workerData as { control: SharedArrayBuffer; port: MessagePort; index: number };
const ctl = new Int32Array(control, 0, CONTROL.INTS);
const scaleCell = new Float64Array(control, CONTROL.SCALE_BYTE_OFFSET, 1);
const arrays = new Map<number, FloatArray>();

function drain(): void {
  for (let message = receiveMessageOnPort(port); message; message = receiveMessageOnPort(port)) {
    const m = message.message as SharedArrayMessage;
    arrays.set(m.id, m.kind === 'f64' ? new Float64Array(m.buffer, m.byteOffset, m.length) : new Float32Array(m.buffer, m.byteOffset, m.length));
  }
}

function array(id: number): FloatArray {
  const found = arrays.get(id);
  if (!found) throw new Error(`kernel worker: unknown array ${id}`);
  return found;
}

port.postMessage('ready');
let seen = 0;
for (;;) {
  Atomics.wait(ctl, CONTROL.SEQUENCE, seen);
  seen = Atomics.load(ctl, CONTROL.SEQUENCE);
  const op = ctl[CONTROL.OP]!;
  if (op === OP.SHUTDOWN) break;
  try {
    drain();
    const rows = ctl[CONTROL.ROWS]!;
    const inDim = ctl[CONTROL.IN_DIM]!;
    const outDim = ctl[CONTROL.OUT_DIM]!;
    const accumulate = ctl[CONTROL.ACCUMULATE] === 1;
    const [t0, t1] = rowRange(rows, ctl[CONTROL.PARTICIPANTS]!, index);
    if (t1 > t0) {
      const a = array(ctl[CONTROL.ARRAY_A]!);
      const b = array(ctl[CONTROL.ARRAY_B]!);
      const c = array(ctl[CONTROL.ARRAY_C]!);
      if (op === OP.MATMUL) {
        optimisedKernels.matmul(a.subarray(t0 * inDim), b, c.subarray(t0 * outDim), t1 - t0, inDim, outDim, scaleCell[0]!, accumulate);
      } else {
        optimisedKernels.matmulTransposed(a.subarray(t0 * outDim), b, c.subarray(t0 * inDim), t1 - t0, inDim, outDim, scaleCell[0]!, accumulate);
      }
    }
  } catch {
    Atomics.store(ctl, CONTROL.FAILED, 1);
  }
  Atomics.add(ctl, CONTROL.DONE, 1);
  Atomics.notify(ctl, CONTROL.DONE);
}
port.close();
