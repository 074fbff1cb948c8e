/**
 * The command trainer with a small Node script as the external trainer: placeholders and
 * environment reach it, its JSON and Hugging Face-style lines become metrics, messages and
 * checkpoints, and the real GGUF LoRA adapter it writes (with the repository's compiled
 * adapter writer, dist/) is the result. Also: a failing exit reports stderr's tail, a missing
 * adapter is an error, cancel and pause kill the whole process group promptly (SIGKILL when
 * SIGTERM is ignored), and a restart stops the trainer left running by the previous run.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FineTuningTrainerConfig, ModelConfig } from '../config/schema.js';
import { openGguf } from '../gguf/reader.js';
import { createCommandTrainer } from './command-trainer.js';
import { parseLogLine, parsePythonDict } from './trainer-log-lines.js';
import { TrainerError, type TrainerProgress, type TrainerRun, type TrainingMetrics } from './trainer-spec.js';

const writerPath = resolve('dist/fine-tuning/local-trainer/lora-adapter-writer.js');
const hasCompiledWriter = existsSync(writerPath);

const root = mkdtempSync(join(tmpdir(), 'chatgate-command-trainer-'));
const scriptPath = join(root, 'fake-trainer.mjs');
const trainingPath = join(root, 'training.jsonl');
writeFileSync(trainingPath, '{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}]}\n');

/** The external trainer: `node fake-trainer.mjs <mode> <output_dir> …args`. */
writeFileSync(
  scriptPath,
  `
import { spawn } from 'node:child_process';
import { join } from 'node:path';
const [mode, outputDir, ...rest] = process.argv.slice(2);
const say = (object) => console.log(JSON.stringify(object));
const adapter = async (path) => {
  const { writeLoraAdapter } = await import(process.env.ADAPTER_WRITER_URL);
  const rank = 2, dim = 4;
  await writeLoraAdapter(path, {
    rank,
    alpha: 4,
    name: 'fake-trainer',
    matrices: [{ layer: 0, target: 'attn_q', inDim: dim, outDim: dim, a: new Float32Array(rank * dim).fill(0.01), b: new Float32Array(dim * rank).fill(0.02) }],
  });
};

if (mode === 'sleep') {
  // A grandchild in the same process group, and (optionally) deaf to SIGTERM.
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  if (process.env.IGNORE_SIGTERM === '1') process.on('SIGTERM', () => {});
  say({ message: 'grandchild ' + child.pid });
  setInterval(() => {}, 1000);
} else if (mode === 'fail') {
  for (let i = 0; i < 60; i++) console.error('log line ' + i);
  console.error('torch.OutOfMemoryError: CUDA out of memory.');
  process.exit(3);
} else if (mode === 'no-adapter') {
  say({ step: 1, train_loss: 2 });
} else if (mode === 'not-gguf') {
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(outputDir, 'adapter.gguf'), 'safetensors, not gguf');
} else {
  say({ message: 'args ' + JSON.stringify(rest) });
  say({ message: 'env ' + JSON.stringify({ restart: process.env.CHATGATE_RESTART, job: process.env.CHATGATE_JOB_ID, custom: process.env.MY_SETTING, unbuffered: process.env.PYTHONUNBUFFERED, cwd: process.cwd() }), level: 'warn' });
  console.log('Loading checkpoint shards: 100%|##########| 2/2');
  console.log("{'loss': 1.5, 'grad_norm': 0.5, 'learning_rate': 0.0001, 'num_tokens': 512.0, 'mean_token_accuracy': 0.4, 'epoch': 0.5}");
  console.log("{'loss': 1.25, 'grad_norm': np.float64(0.4), 'learning_rate': 5e-05, 'num_tokens': 1024.0, 'epoch': 1.0}");
  console.log("{'eval_loss': 1.375, 'eval_runtime': 0.1, 'eval_mean_token_accuracy': 0.45, 'epoch': 1.0}");
  say({ step: 3, total_steps: 4, epoch: 1.5, train_loss: 1, valid_loss: 1.25 });
  await adapter(join(outputDir, 'checkpoint-3.gguf'));
  say({ checkpoint: 'output/checkpoint-3.gguf', step: 3, epoch: 1.5, train_loss: 1 });
  say({ checkpoint: 'output/nowhere.gguf', step: 3 });
  console.log("{'train_runtime': 1.0, 'train_samples_per_second': 8.0, 'train_loss': 1.1, 'epoch': 2.0}");
  console.error('a warning on stderr');
  say({ trained_tokens: 2048 });
  await adapter(join(outputDir, 'adapter.gguf'));
}
`,
);

class RecordingProgress implements TrainerProgress {
  readonly reports: string[] = [];
  readonly metricsSeen: TrainingMetrics[] = [];
  readonly messages: Array<{ level: string; text: string }> = [];
  readonly checkpoints: Array<{ step: number; epoch: number; adapterPath: string | null; metrics: Record<string, number> }> = [];
  readonly states: Array<Record<string, unknown>> = [];
  stop: 'cancel' | 'pause' | null = null;
  onMessage: (text: string) => void = () => {};

  async metrics(metrics: TrainingMetrics): Promise<void> {
    this.metricsSeen.push(metrics);
  }
  async message(level: 'info' | 'warn' | 'error', text: string): Promise<void> {
    this.messages.push({ level, text });
    this.onMessage(text);
  }
  async checkpoint(checkpoint: RecordingProgress['checkpoints'][number]): Promise<void> {
    this.checkpoints.push(checkpoint);
  }
  async saveState(state: Record<string, unknown>): Promise<void> {
    this.states.push(structuredClone(state));
  }
  stopRequested(): 'cancel' | 'pause' | null {
    return this.stop;
  }
  get state(): Record<string, unknown> | null {
    return this.states.at(-1) ?? null;
  }
}

let controller: AbortController;
let workDirectory: string;
let jobNumber = 0;
const leftovers: number[] = [];
beforeEach(() => {
  controller = new AbortController();
  workDirectory = join(root, `job-${++jobNumber}`);
});
afterEach(() => {
  controller.abort();
  for (const pid of leftovers.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Gone.
    }
  }
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function makeRun(mode: string, overrides: Partial<TrainerRun> = {}, trainer: Partial<Extract<FineTuningTrainerConfig, { trainer: 'command' }>> = {}): TrainerRun {
  const config: FineTuningTrainerConfig = {
    trainer: 'command',
    command: [process.execPath, scriptPath, mode, '{output_dir}', '{training_file}', '{validation_file}', '{base_model}', '{base_model_path}', '--epochs={n_epochs}', '{batch_size}', '{learning_rate}', '{learning_rate_multiplier}', '{seed}', '{suffix}', '{job_id}', '{unknown}'],
    environment: { ADAPTER_WRITER_URL: pathToFileURL(writerPath).href, MY_SETTING: 'job {job_id}' },
    adapter: '{output_dir}/adapter.gguf',
    learning_rate: 2e-4,
    ...trainer,
  };
  const baseModel = { provider: 'llama-cpp', name: 'tiny-llama', path: 'models/tiny.gguf', lora: [] } as unknown as ModelConfig;
  return {
    jobId: `ftjob-cmd-${jobNumber}`,
    baseModel,
    trainer: config,
    trainingPath,
    validationPath: null,
    workDirectory,
    hyperparameters: { n_epochs: 3, batch_size: 8, learning_rate_multiplier: 1.5 },
    seed: 7,
    suffix: 'faq',
    state: null,
    signal: controller.signal,
    ...overrides,
  };
}

const trainer = createCommandTrainer({ killGraceMs: 500, stopCheckMs: 20 });

function isGroupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('command trainer', () => {
  it.skipIf(!hasCompiledWriter)('runs the command with its placeholders, reads its progress and returns its GGUF adapter', async () => {
    const progress = new RecordingProgress();
    const result = await trainer.run(makeRun('ok'), progress);

    const outputDir = join(workDirectory, 'output');
    expect(result).toEqual({ kind: 'adapter', adapterPath: join(outputDir, 'adapter.gguf'), trainedTokens: 2048 });
    const adapter = openGguf(join(outputDir, 'adapter.gguf'));
    try {
      expect(adapter.metadata.get('adapter.type')).toBe('lora');
      expect([...adapter.tensors.keys()]).toEqual(['blk.0.attn_q.weight.lora_a', 'blk.0.attn_q.weight.lora_b']);
    } finally {
      adapter.close();
    }

    expect(progress.messages[0]).toEqual({
      level: 'info',
      text: `args ${JSON.stringify([trainingPath, '', 'tiny-llama', resolve('models/tiny.gguf'), '--epochs=3', '8', '0.0003', '1.5', '7', 'faq', `ftjob-cmd-${jobNumber}`, '{unknown}'])}`,
    });
    expect(progress.messages[1]).toEqual({
      level: 'warn',
      text: `env ${JSON.stringify({ restart: '0', job: `ftjob-cmd-${jobNumber}`, custom: `job ftjob-cmd-${jobNumber}`, unbuffered: '1', cwd: workDirectory })}`,
    });
    expect(progress.metricsSeen).toEqual([
      { step: 1, train_loss: 1.5, epoch: 0.5, train_mean_token_accuracy: 0.4 },
      { step: 2, train_loss: 1.25, epoch: 1 },
      { step: 2, train_loss: 1.25, valid_loss: 1.375, epoch: 1, valid_mean_token_accuracy: 0.45 },
      { step: 3, train_loss: 1, valid_loss: 1.25, total_steps: 4, epoch: 1.5 },
    ]);
    expect(progress.checkpoints).toEqual([{ step: 3, epoch: 1.5, adapterPath: join(outputDir, 'checkpoint-3.gguf'), metrics: { train_loss: 1 } }]);
    expect(progress.messages[2]?.level).toBe('warn');
    expect(progress.messages[2]?.text).toContain('nowhere.gguf');
    expect(progress.messages).toHaveLength(3);
    expect(progress.states[0]).toMatchObject({ runs: 1, host: hostname(), pid: expect.any(Number) });
    expect(progress.state).toEqual({ runs: 1 });
  });

  it('reports a failing exit with the tail of stderr', async () => {
    const failure = await trainer.run(makeRun('fail'), new RecordingProgress()).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TrainerError);
    expect(failure).toMatchObject({ code: 'trainer_failed' });
    const message = (failure as Error).message;
    expect(message).toMatch(/^The trainer exited with code 3:\n/);
    expect(message).toContain('torch.OutOfMemoryError: CUDA out of memory.');
    expect(message).toContain('log line 59');
    expect(message).not.toContain('log line 10\n');
    expect(message.split('\n')).toHaveLength(51);
  });

  it('fails when the command leaves no adapter, or one that is not GGUF', async () => {
    await expect(trainer.run(makeRun('no-adapter'), new RecordingProgress())).rejects.toMatchObject({ code: 'missing_adapter' });
    await expect(trainer.run(makeRun('not-gguf'), new RecordingProgress())).rejects.toMatchObject({ code: 'invalid_adapter' });
  });

  it('fails when the command cannot be started', async () => {
    const run = makeRun('ok', {}, { command: [join(root, 'no-such-trainer')] });
    await expect(trainer.run(run, new RecordingProgress())).rejects.toMatchObject({ code: 'trainer_failed', message: expect.stringContaining('could not be started') });
  });

  it('cancel terminates the process group promptly', async () => {
    const progress = new RecordingProgress();
    let grandchild = 0;
    progress.onMessage = (text) => {
      grandchild = Number(text.split(' ')[1]);
      progress.stop = 'cancel';
    };
    const started = Date.now();
    const result = await trainer.run(makeRun('sleep'), progress);
    expect(result).toEqual({ kind: 'stopped', reason: 'cancel' });
    expect(Date.now() - started).toBeLessThan(5_000);
    const pid = progress.states[0]!['pid'] as number;
    expect(isGroupAlive(pid)).toBe(false);
    expect(() => process.kill(grandchild, 0)).toThrow();
  });

  it('kills with SIGKILL a command that ignores SIGTERM; a pause stops it too', async () => {
    const progress = new RecordingProgress();
    progress.onMessage = () => {
      progress.stop = 'pause';
    };
    const run = makeRun('sleep', {}, { environment: { IGNORE_SIGTERM: '1' } });
    const result = await trainer.run(run, progress);
    expect(result).toEqual({ kind: 'stopped', reason: 'pause' });
    expect(isGroupAlive(progress.states[0]!['pid'] as number)).toBe(false);
    expect(progress.state).toEqual({ runs: 1 });
  });

  it('throws the signal reason when the run is aborted, leaving nothing running', async () => {
    const progress = new RecordingProgress();
    progress.onMessage = () => controller.abort(new Error('shutting down'));
    await expect(trainer.run(makeRun('sleep'), progress)).rejects.toThrow('shutting down');
    expect(isGroupAlive(progress.states[0]!['pid'] as number)).toBe(false);
  });

  it.skipIf(!hasCompiledWriter)('on a restart, stops the trainer the previous run left behind and starts again', async () => {
    const argv = [process.execPath, scriptPath, 'sleep', 'left-over'];
    const leftover = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: 'ignore' });
    leftovers.push(leftover.pid!);
    const exited = new Promise((settle) => leftover.once('exit', settle));
    await new Promise((settle) => setTimeout(settle, 100));

    const progress = new RecordingProgress();
    const result = await trainer.run(makeRun('ok', { state: { runs: 1, pid: leftover.pid, host: hostname(), argv } }), progress);
    await exited;
    expect(result).toMatchObject({ kind: 'adapter' });
    expect(progress.messages[0]?.text).toBe(`Stopped the trainer left running by the previous run (pid ${leftover.pid}); starting it again.`);
    expect(progress.messages[2]?.text).toContain('"restart":"1"');
    expect(progress.state).toEqual({ runs: 2 });
  });

  it('leaves alone a process whose command line is not the previous run\'s', async () => {
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' });
    leftovers.push(other.pid!);
    await new Promise((settle) => setTimeout(settle, 100));
    const state = { runs: 1, pid: other.pid, host: hostname(), argv: [process.execPath, scriptPath, 'sleep'] };
    await expect(trainer.run(makeRun('no-adapter', { state }), new RecordingProgress())).rejects.toMatchObject({ code: 'missing_adapter' });
    expect(isGroupAlive(other.pid!)).toBe(true);
  });
});

describe('progress lines', () => {
  it('reads JSON objects and Python dict literals, and nothing else', () => {
    expect(parseLogLine('{"step": 1, "train_loss": 0.5}')).toEqual({ step: 1, train_loss: 0.5 });
    expect(parseLogLine("{'loss': 1.23, 'grad_norm': tensor(0.5, device='cuda:0'), 'learning_rate': 1e-4, 'epoch': 0.5}")).toEqual({ loss: 1.23, grad_norm: 0.5, learning_rate: 1e-4, epoch: 0.5 });
    expect(parseLogLine('Loading checkpoint shards: 100%')).toBeUndefined();
    expect(parseLogLine('[1, 2]')).toBeUndefined();
    expect(parseLogLine("{'a': {'nested': 1}}")).toBeUndefined();
    expect(parseLogLine("{'a': 1} trailing")).toBeUndefined();
  });

  it('converts Python literals carefully', () => {
    expect(parsePythonDict(`{'text': 'it\\'s "quoted"', "other": 'tab\\there', 'flag': True, 'off': False, 'none': None}`)).toEqual({ text: `it's "quoted"`, other: 'tab\there', flag: true, off: false, none: null });
    const special = parsePythonDict("{'a': nan, 'b': inf, 'c': -inf, 'd': -1.5e-3, 'e': np.float64(2.0), 'f': .5}")!;
    expect(special['a']).toBeNaN();
    expect(special).toMatchObject({ b: Infinity, c: -Infinity, d: -1.5e-3, e: 2, f: 0.5 });
    expect(parsePythonDict('{}')).toEqual({});
    expect(parsePythonDict("{'a': 1,}")).toBeUndefined();
    expect(parsePythonDict("{'a': [1, 2]}")).toBeUndefined();
    expect(parsePythonDict("{'a': 'unterminated}")).toBeUndefined();
  });
});
