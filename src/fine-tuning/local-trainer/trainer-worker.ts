/**
 * Worker-thread entry point: runs one LoraTrainer and answers TrainerRequests from the parent
 * port in order, so the training math never blocks the thread that serves requests. Started by
 * LoraTrainerWorker (trainer-worker-client.ts).
 */
import { parentPort } from 'node:worker_threads';
import { LoraTrainer, type StepResult } from './lora-trainer.js';
import type { TrainerRequest, TrainerResponse } from './trainer-worker-protocol.js';

if (!parentPort) throw new Error('trainer-worker.ts must run in a worker thread');
const port = parentPort;
let trainer: LoraTrainer | undefined;
let queue: Promise<void> = Promise.resolve();

function requireTrainer(): LoraTrainer {
  if (!trainer) throw new Error('the trainer is not open');
  return trainer;
}

async function handle(request: TrainerRequest): Promise<TrainerResponse> {
  let result: StepResult | undefined;
  switch (request.method) {
    case 'open':
      if (trainer) throw new Error('the trainer is already open');
      trainer = await LoraTrainer.open(request.options);
      break;
    case 'trainStep': result = requireTrainer().trainStep(request.batch); break;
    case 'evaluate': result = requireTrainer().evaluate(request.examples); break;
    case 'saveCheckpoint': await requireTrainer().saveCheckpoint(request.path); break;
    case 'loadCheckpoint': await requireTrainer().loadCheckpoint(request.path); break;
    case 'writeAdapter': await requireTrainer().writeAdapter(request.path, request.name); break;
    case 'setLearningRate': requireTrainer().learningRate = request.learningRate; break;
    case 'close': await trainer?.close(); break;
  }
  return { id: request.id, ok: true, status: { step: trainer?.step ?? 0 }, ...(result ? { result } : {}) };
}

port.on('message', (request: TrainerRequest) => {
  queue = queue.then(async () => {
    let response: TrainerResponse;
    try {
      response = await handle(request);
    } catch (error) {
      const e = error instanceof Error ? error : new Error(String(error));
      response = { id: request.id, ok: false, error: { message: e.message, ...(e.stack ? { stack: e.stack } : {}) } };
    }
    port.postMessage(response);
    if (request.method === 'close') port.close();
  });
});
