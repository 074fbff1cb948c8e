/**
 * LoraTrainerWorker: the LoraTrainer API, asynchronous, with the trainer running in a worker
 * thread (trainer-worker.ts) so that the server's event loop stays responsive while it trains.
 * Calls are queued and answered in order; if the worker dies, pending and later calls reject.
 */
import { Worker } from 'node:worker_threads';
import type { LoraTrainerOptions, StepResult, TrainingExample } from './lora-trainer.js';
import type { TrainerRequest, TrainerResponse } from './trainer-worker-protocol.js';

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export interface LoraTrainerWorkerOptions {
  /** The compiled worker entry; default trainer-worker.js beside this module (as in dist/). */
  workerUrl?: URL;
}

export class LoraTrainerWorker {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (response: TrainerResponse & { ok: true }) => void; reject: (error: Error) => void }>();
  private failure: Error | undefined;
  private currentStep = 0;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (response: TrainerResponse) => {
      const waiter = this.pending.get(response.id);
      if (!waiter) return;
      this.pending.delete(response.id);
      if (response.ok) {
        this.currentStep = response.status.step;
        waiter.resolve(response);
      } else {
        const error = new Error(response.error.message);
        if (response.error.stack) error.stack = response.error.stack;
        waiter.reject(error);
      }
    });
    const fail = (error: Error) => {
      this.failure ??= error;
      for (const waiter of this.pending.values()) waiter.reject(this.failure);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the trainer worker exited (code ${code})`)));
  }

  /** Starts a worker and opens the trainer in it. */
  static async open(options: LoraTrainerOptions, workerOptions: LoraTrainerWorkerOptions = {}): Promise<LoraTrainerWorker> {
    const worker = new Worker(workerOptions.workerUrl ?? new URL('./trainer-worker.js', import.meta.url));
    const client = new LoraTrainerWorker(worker);
    try {
      await client.call({ method: 'open', options });
    } catch (error) {
      await worker.terminate();
      throw error;
    }
    return client;
  }

  private call(request: DistributiveOmit<TrainerRequest, 'id'>): Promise<TrainerResponse & { ok: true }> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id } as TrainerRequest);
    });
  }

  /** Optimizer steps taken, as of the last answered call. */
  get step(): number {
    return this.currentStep;
  }

  async trainStep(batch: TrainingExample[]): Promise<StepResult> {
    return (await this.call({ method: 'trainStep', batch })).result!;
  }

  async evaluate(examples: TrainingExample[]): Promise<StepResult> {
    return (await this.call({ method: 'evaluate', examples })).result!;
  }

  async saveCheckpoint(path: string): Promise<void> {
    await this.call({ method: 'saveCheckpoint', path });
  }

  async loadCheckpoint(path: string): Promise<void> {
    await this.call({ method: 'loadCheckpoint', path });
  }

  async writeAdapter(path: string, name?: string): Promise<void> {
    await this.call({ method: 'writeAdapter', path, ...(name === undefined ? {} : { name }) });
  }

  async setLearningRate(learningRate: number): Promise<void> {
    await this.call({ method: 'setLearningRate', learningRate });
  }

  /** Closes the trainer and ends the worker (also after a failure). */
  async close(): Promise<void> {
    if (!this.failure) {
      try {
        await this.call({ method: 'close' });
      } catch {
        // ending the worker below is what matters
      }
    }
    await this.worker.terminate();
  }
}
