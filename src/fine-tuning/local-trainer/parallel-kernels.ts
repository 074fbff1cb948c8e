/**
 * Multi-threaded kernels: the forward and input-gradient products are split by rows (tokens)
 * between the calling thread and `threads − 1` helper threads (kernel-worker.ts) that work on
 * the same SharedArrayBuffer-backed arrays, synchronised with Atomics on a shared control
 * block (no message round trip per product). Each output element is computed by the same code
 * in the same order as single-threaded, so results are bit-identical to the optimised kernels.
 * Small products, unshared arrays and the weight-gradient products run on the calling thread.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { FloatArray } from './llama-weights.js';
import { optimisedKernels } from './kernels-optimised.js';
import type { MatmulKernels } from './kernel-types.js';
import { CONTROL, OP, rowRange, type SharedArrayMessage } from './parallel-protocol.js';

/** Below this many multiply-adds a product is not worth waking the helpers for. */
const MIN_PARALLEL_WORK = 1 << 16;
/** A helper that does not answer within this time is taken as dead. */
const WAIT_LIMIT_MS = 120_000;

export interface ParallelKernelsOptions {
  /** Total threads including the caller's (≥ 2). */
  threads: number;
  /** The compiled helper entry; default kernel-worker.js beside this module (as in dist/). */
  workerUrl?: URL;
}

export class ParallelKernels implements MatmulKernels {
  private readonly ctl: Int32Array;
  private readonly scaleCell: Float64Array;
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  private readonly ids = new WeakMap<FloatArray, number>();
  private nextId = 1;
  private closed = false;
  readonly participants: number;

  /** Starts the helper threads and waits until each is ready. */
  static async start(options: ParallelKernelsOptions): Promise<ParallelKernels> {
    const kernels = new ParallelKernels(options);
    try {
      await Promise.all(
        kernels.workers.map(
          (worker, k) =>
            new Promise<void>((resolve, reject) => {
              const port = kernels.ports[k]!;
              const onError = (error: Error) => reject(error);
              const onExit = (code: number) => reject(new Error(`kernel helper thread exited (code ${code}) before it was ready`));
              worker.once('error', onError);
              worker.once('exit', onExit);
              port.once('message', () => {
                worker.off('error', onError);
                worker.off('exit', onExit);
                port.unref();
                resolve();
              });
            }),
        ),
      );
    } catch (error) {
      await kernels.close();
      throw error;
    }
    return kernels;
  }

  private constructor(options: ParallelKernelsOptions) {
    if (!(Number.isInteger(options.threads) && options.threads >= 2)) throw new Error('ParallelKernels needs at least 2 threads');
    this.participants = options.threads;
    const control = new SharedArrayBuffer(CONTROL.BYTES);
    this.ctl = new Int32Array(control, 0, CONTROL.INTS);
    this.scaleCell = new Float64Array(control, CONTROL.SCALE_BYTE_OFFSET, 1);
    const url = options.workerUrl ?? new URL('./kernel-worker.js', import.meta.url);
    for (let index = 1; index < this.participants; index++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(url, { workerData: { control, port: port2, index }, transferList: [port2] });
      worker.unref();
      this.workers.push(worker);
      this.ports.push(port1);
    }
  }

  /** The array's id, registering it with the helpers first; undefined if it is not shared. */
  private idOf(array: FloatArray): number | undefined {
    const known = this.ids.get(array);
    if (known !== undefined) return known;
    if (!(array.buffer instanceof SharedArrayBuffer)) return undefined;
    const id = this.nextId++;
    const message: SharedArrayMessage = {
      id,
      kind: array instanceof Float64Array ? 'f64' : 'f32',
      buffer: array.buffer,
      byteOffset: array.byteOffset,
      length: array.length,
    };
    for (const port of this.ports) port.postMessage(message);
    this.ids.set(array, id);
    return id;
  }

  private run(op: number, a: FloatArray, b: FloatArray, c: FloatArray, rows: number, inDim: number, outDim: number, scale: number, accumulate: boolean): boolean {
    if (this.closed || rows < 2 * this.participants || rows * inDim * outDim < MIN_PARALLEL_WORK) return false;
    const ia = this.idOf(a);
    const ib = this.idOf(b);
    const ic = this.idOf(c);
    if (ia === undefined || ib === undefined || ic === undefined) return false;
    const ctl = this.ctl;
    ctl[CONTROL.OP] = op;
    ctl[CONTROL.ARRAY_A] = ia;
    ctl[CONTROL.ARRAY_B] = ib;
    ctl[CONTROL.ARRAY_C] = ic;
    ctl[CONTROL.IN_DIM] = inDim;
    ctl[CONTROL.OUT_DIM] = outDim;
    ctl[CONTROL.ACCUMULATE] = accumulate ? 1 : 0;
    ctl[CONTROL.ROWS] = rows;
    ctl[CONTROL.PARTICIPANTS] = this.participants;
    this.scaleCell[0] = scale;
    Atomics.store(ctl, CONTROL.DONE, 0);
    Atomics.add(ctl, CONTROL.SEQUENCE, 1);
    Atomics.notify(ctl, CONTROL.SEQUENCE);
    const [t0, t1] = rowRange(rows, this.participants, 0);
    if (op === OP.MATMUL) optimisedKernels.matmul(a, b, c, t1 - t0, inDim, outDim, scale, accumulate);
    else optimisedKernels.matmulTransposed(a, b, c, t1 - t0, inDim, outDim, scale, accumulate);
    const helpers = this.participants - 1;
    const deadline = Date.now() + WAIT_LIMIT_MS;
    for (let done = Atomics.load(ctl, CONTROL.DONE); done < helpers; done = Atomics.load(ctl, CONTROL.DONE)) {
      if (Date.now() > deadline) {
        this.closed = true;
        throw new Error('a kernel helper thread did not answer');
      }
      Atomics.wait(ctl, CONTROL.DONE, done, 1000);
    }
    if (Atomics.load(ctl, CONTROL.FAILED) !== 0) {
      this.closed = true;
      throw new Error('a kernel helper thread failed');
    }
    return true;
  }

  matmul(X: FloatArray, W: FloatArray, Y: FloatArray, rows: number, inDim: number, outDim: number, scale: number, accumulate: boolean): void {
    if (!this.run(OP.MATMUL, X, W, Y, rows, inDim, outDim, scale, accumulate)) optimisedKernels.matmul(X, W, Y, rows, inDim, outDim, scale, accumulate);
  }

  matmulTransposed(dY: FloatArray, W: FloatArray, dX: FloatArray, rows: number, inDim: number, outDim: number, scale: number, accumulate: boolean): void {
    if (!this.run(OP.MATMUL_TRANSPOSED, dY, W, dX, rows, inDim, outDim, scale, accumulate)) {
      optimisedKernels.matmulTransposed(dY, W, dX, rows, inDim, outDim, scale, accumulate);
    }
  }

  outerAccumulate(dY: FloatArray, X: FloatArray, G: FloatArray, rows: number, inDim: number, outDim: number, scale: number): void {
    optimisedKernels.outerAccumulate(dY, X, G, rows, inDim, outDim, scale);
  }

  /** Stops the helper threads (the kernels then run on the calling thread only). */
  async close(): Promise<void> {
    if (this.workers.length === 0) return;
    this.closed = true;
    this.ctl[CONTROL.OP] = OP.SHUTDOWN;
    Atomics.add(this.ctl, CONTROL.SEQUENCE, 1);
    Atomics.notify(this.ctl, CONTROL.SEQUENCE);
    const workers = this.workers.splice(0);
    for (const port of this.ports.splice(0)) port.close();
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}
