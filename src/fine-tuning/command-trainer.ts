/**
 * The `command` trainer (docs/fine-tuning.md, docs/fine-tuning-recipes/README.md): an external
 * program trains the LoRA adapter (a TRL, Axolotl or Unsloth recipe on a GPU machine) and
 * leaves it as a GGUF file that llama-cpp serves on top of the base model.
 *
 * The command runs without a shell (`spawn`, its own process group), in `working_directory`
 * (default: the job's directory), with Chatgate's environment plus `environment`, plus
 * CHATGATE_JOB_ID, CHATGATE_OUTPUT_DIR, CHATGATE_RESTART ("1" when an earlier run of this job
 * was started: a recipe may resume from its own checkpoints in the output directory) and
 * PYTHONUNBUFFERED=1 (so that a Python trainer's lines arrive as they are printed; the
 * configuration may override it). Placeholders in the command, `working_directory`,
 * `environment` values and `adapter`: {training_file} {validation_file} (empty without one)
 * {output_dir} (`<job directory>/output`, created; kept across runs) {base_model} (name)
 * {base_model_path} (a llama-cpp model's file, absolute; empty otherwise) {n_epochs}
 * {batch_size} {learning_rate} (`learning_rate` × the job's multiplier)
 * {learning_rate_multiplier} {seed} {suffix} (empty without one) {job_id}. Unknown ones are
 * left as they are.
 *
 * Progress protocol: every stdout line that is a JSON object (or a Python dict literal) is read:
 *   {"step": 10, "total_steps": 100, "epoch": 1, "train_loss": 1.23, "valid_loss": 1.4}  → metrics
 *     (also train_mean_token_accuracy, valid_mean_token_accuracy; without train_loss the last
 *     one seen is used)
 *   {"message": "…", "level": "info"|"warn"|"error"}                                       → message
 *   {"checkpoint": "path.gguf", "step": 50, "epoch": 1, …numbers}                          → checkpoint
 *     (a GGUF adapter, relative to the working directory; its other numbers are its metrics)
 *   {"trained_tokens": N}                                                                  → the result's trained tokens
 * Hugging Face Trainer's own log lines, printed as Python dicts, are understood too:
 *   {'loss': 1.23, 'grad_norm': 0.5, 'learning_rate': 1e-4, 'epoch': 0.5} → metrics; `step`
 *     counts these lines (one per `logging_steps`), it is not the optimiser's step;
 *     TRL's mean_token_accuracy and num_tokens (the trained tokens, if no trained_tokens line)
 *     are read;
 *   {'eval_loss': 1.4, 'epoch': 1.0} → metrics with valid_loss (and eval_mean_token_accuracy).
 * Other lines are ignored; the last 50 stderr lines make the error message of a failure.
 *
 * Outcome: exit 0 with a GGUF file at `adapter` → `{kind: 'adapter'}` (the file is removed
 * before the command starts, so a stale one is never taken); exit 0 without it →
 * TrainerError('missing_adapter') (not a GGUF file: 'invalid_adapter'); any other exit →
 * TrainerError('trainer_failed', stderr's tail). Left-over processes of the group are killed
 * once the command exits.
 *
 * Stopping: 'cancel', 'pause' and `run.signal` send SIGTERM to the process group, SIGKILL
 * after 10 s. A command cannot be paused mid-run: 'pause' terminates it and the next run
 * starts the command again (with CHATGATE_RESTART=1). A run started after a crash finds the
 * pid of the previous run in the state: if that process is still alive on this host and is
 * the same command line (checked in /proc), its group is terminated first.
 */
import { parseLogLine } from './trainer-log-lines.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { abortableDelay } from '../util/abortable-delay.js';
import { TrainerError, type Trainer, type TrainerProgress, type TrainerResult, type TrainerRun, type TrainingMetrics } from './trainer-spec.js';

export interface CommandTrainerOptions {
  /** Between SIGTERM and SIGKILL (default 10 s). */
  killGraceMs?: number;
  /** How often `progress.stopRequested()` is looked at while the command runs (default 500 ms). */
  stopCheckMs?: number;
}

/** What the trainer keeps in the job's state. */
interface CommandState {
  /** Runs started so far. */
  runs: number;
  /** The running command's process (group leader), host and argv; absent when none runs. */
  pid?: number;
  host?: string;
  argv?: string[];
}

const stderrTailLines = 50;
const longestStderrLine = 500;
const ggufMagic = 'GGUF';

export function createCommandTrainer(options: CommandTrainerOptions = {}): Trainer {
  const killGraceMs = options.killGraceMs ?? 10_000;
  const stopCheckMs = options.stopCheckMs ?? 500;
  return {
    run: async (run, progress) => runCommand(run, progress, killGraceMs, stopCheckMs),
  };
}

async function runCommand(run: TrainerRun, progress: TrainerProgress, killGraceMs: number, stopCheckMs: number): Promise<TrainerResult> {
  const config = run.trainer;
  if (config.trainer !== 'command') throw new TrainerError('unsupported_model', `The command trainer cannot run a '${config.trainer}' fine-tuning configuration.`);
  const previous = readState(run.state);
  if (previous.pid !== undefined) await stopLeftover(previous, progress, killGraceMs);
  run.signal.throwIfAborted();
  const early = progress.stopRequested();
  if (early !== null) return { kind: 'stopped', reason: early };

  const outputDir = join(run.workDirectory, 'output');
  await mkdir(outputDir, { recursive: true });
  const values = placeholderValues(run, outputDir);
  const argv = config.command.map((part) => substitute(part, values));
  const cwd = resolve(run.workDirectory, substitute(config.working_directory ?? run.workDirectory, values));
  const adapterPath = resolve(cwd, substitute(config.adapter, values));
  await rm(adapterPath, { force: true });
  const environment: Record<string, string> = {
    ...stringEnvironment(process.env),
    PYTHONUNBUFFERED: '1',
    CHATGATE_JOB_ID: run.jobId,
    CHATGATE_OUTPUT_DIR: outputDir,
    CHATGATE_RESTART: previous.runs > 0 ? '1' : '0',
  };
  for (const [name, value] of Object.entries(config.environment)) environment[name] = substitute(value, values);

  const child = spawn(argv[0]!, argv.slice(1), { cwd, env: environment, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const started = await new Promise<Error | null>((settle) => {
    child.once('spawn', () => settle(null));
    child.once('error', (error) => settle(error));
  });
  // Later errors (a failed kill) are not fatal: the exit tells the outcome.
  child.on('error', () => undefined);
  if (started !== null || child.pid === undefined) {
    throw new TrainerError('trainer_failed', `The trainer command '${argv[0]}' could not be started: ${started?.message ?? 'no process'}.`);
  }
  const pid = child.pid;
  const state: CommandState = { runs: previous.runs + 1, pid, host: hostname(), argv };
  const watched = watchCommand(child, run, progress, cwd, killGraceMs, stopCheckMs);
  try {
    await progress.saveState({ ...state });
  } catch (error) {
    watched.terminate();
    await watched.done.catch(() => undefined);
    throw error;
  }
  const outcome = await watched.done;
  // Whatever the command left running in its group (e.g. data loader workers) goes with it.
  await killGroupAndWait(pid);
  const after: CommandState = { runs: state.runs };

  if (outcome.stop !== null) {
    await progress.saveState({ ...after });
    if (outcome.stop === 'abort') throw run.signal.reason;
    return { kind: 'stopped', reason: outcome.stop };
  }
  await progress.saveState({ ...after });
  if (outcome.code !== 0) {
    const how = outcome.code !== null ? `exited with code ${outcome.code}` : `was killed by ${outcome.signal ?? 'a signal'}`;
    const tail = outcome.stderr.join('\n');
    throw new TrainerError('trainer_failed', tail === '' ? `The trainer ${how}, printing nothing on stderr.` : `The trainer ${how}:\n${tail}`);
  }
  const magic = await readMagic(adapterPath);
  if (magic === null) throw new TrainerError('missing_adapter', `The trainer finished but left no adapter at ${adapterPath}.`);
  if (magic !== ggufMagic) throw new TrainerError('invalid_adapter', `The trainer's adapter ${adapterPath} is not a GGUF file.`);
  return { kind: 'adapter', adapterPath, trainedTokens: outcome.trainedTokens };
}

interface CommandOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why the command was stopped, if it was. */
  stop: 'cancel' | 'pause' | 'abort' | null;
  stderr: string[];
  trainedTokens: number;
}

/** Reads the command's output, watches for stop requests, and settles once it has exited and its output is read. */
function watchCommand(
  child: ChildProcess,
  run: TrainerRun,
  progress: TrainerProgress,
  cwd: string,
  killGraceMs: number,
  stopCheckMs: number,
): { done: Promise<CommandOutcome>; terminate: () => void } {
  const pid = child.pid!;
  const reader = new ProgressReader(progress, cwd);
  const stderr: string[] = [];
  let stop: CommandOutcome['stop'] = null;
  let killTimer: NodeJS.Timeout | undefined;
  let reports: Promise<void> = Promise.resolve();
  let reportError: unknown;

  const terminate = (): void => {
    if (killTimer !== undefined) return;
    killGroup(pid, 'SIGTERM');
    killTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), killGraceMs);
  };
  const checkStop = (): void => {
    if (stop !== null) return;
    const requested = run.signal.aborted ? 'abort' : progress.stopRequested();
    if (requested === null) return;
    stop = requested;
    terminate();
  };
  const stopTimer = setInterval(checkStop, stopCheckMs);
  run.signal.addEventListener('abort', checkStop);

  createInterface({ input: child.stdout!, crlfDelay: Infinity }).on('line', (line) => {
    reports = reports.then(() => reader.read(line)).catch((error: unknown) => {
      // The job cannot record progress (e.g. the database is gone): stop the command.
      reportError ??= error;
      terminate();
    });
  });
  createInterface({ input: child.stderr!, crlfDelay: Infinity }).on('line', (line) => {
    stderr.push(line.length > longestStderrLine ? `${line.slice(0, longestStderrLine)}…` : line);
    if (stderr.length > stderrTailLines) stderr.shift();
  });

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((settle) => child.once('exit', (code, signal) => settle({ code, signal })));
  const closed = new Promise<void>((settle) => child.once('close', () => settle()));
  const done = (async (): Promise<CommandOutcome> => {
    const { code, signal } = await exited;
    clearInterval(stopTimer);
    run.signal.removeEventListener('abort', checkStop);
    if (killTimer !== undefined) clearTimeout(killTimer);
    // A grandchild may hold the pipes open: do not wait for it long.
    await Promise.race([closed, abortableDelay(2_000)]);
    child.stdout?.destroy();
    child.stderr?.destroy();
    await reports;
    if (reportError !== undefined) throw reportError;
    return { code, signal, stop, stderr, trainedTokens: reader.trainedTokens };
  })();
  return { done, terminate };
}

/** Turns the command's stdout lines into progress reports (the protocol above). */
class ProgressReader {
  private loggedSteps = 0;
  private lastStep = 0;
  private lastEpoch: number | undefined;
  private lastTrainLoss: number | undefined;
  private explicitTokens: number | undefined;
  private countedTokens: number | undefined;

  constructor(
    private readonly progress: TrainerProgress,
    private readonly cwd: string,
  ) {}

  get trainedTokens(): number {
    return Math.round(this.explicitTokens ?? this.countedTokens ?? 0);
  }

  async read(line: string): Promise<void> {
    const fields = parseLogLine(line);
    if (fields === undefined) return;
    const number = (key: string): number | undefined => finite(fields[key]);
    const trainedTokens = number('trained_tokens');
    if (trainedTokens !== undefined) this.explicitTokens = trainedTokens;

    if (typeof fields['checkpoint'] === 'string') return this.checkpoint(fields['checkpoint'], fields);
    if (typeof fields['message'] === 'string') {
      const level = fields['level'] === 'warn' || fields['level'] === 'error' ? fields['level'] : 'info';
      return this.progress.message(level, fields['message']);
    }
    const step = number('step');
    if (step !== undefined) {
      this.lastStep = step;
      return this.metrics(step, number('train_loss'), number('valid_loss'), {
        total_steps: number('total_steps'),
        epoch: number('epoch'),
        train_mean_token_accuracy: number('train_mean_token_accuracy'),
        valid_mean_token_accuracy: number('valid_mean_token_accuracy'),
      });
    }
    // Hugging Face Trainer's logs; its closing summary (train_runtime, …) is not a step.
    if (fields['train_runtime'] !== undefined) return;
    const loss = number('loss');
    if (loss !== undefined) {
      this.loggedSteps++;
      this.lastStep = this.loggedSteps;
      const tokens = number('num_tokens');
      if (tokens !== undefined) this.countedTokens = tokens;
      return this.metrics(this.loggedSteps, loss, undefined, { epoch: number('epoch'), train_mean_token_accuracy: number('mean_token_accuracy') });
    }
    const evalLoss = number('eval_loss');
    if (evalLoss !== undefined) {
      return this.metrics(this.lastStep, undefined, evalLoss, { epoch: number('epoch'), valid_mean_token_accuracy: number('eval_mean_token_accuracy') });
    }
  }

  private async metrics(
    step: number,
    trainLoss: number | undefined,
    validLoss: number | undefined,
    extra: Omit<Partial<TrainingMetrics>, 'step' | 'train_loss' | 'valid_loss'>,
  ): Promise<void> {
    if (trainLoss !== undefined) this.lastTrainLoss = trainLoss;
    if (extra.epoch !== undefined) this.lastEpoch = extra.epoch;
    const train_loss = trainLoss ?? this.lastTrainLoss;
    // A metrics event needs a training loss: validation losses before any are dropped.
    if (train_loss === undefined) return;
    const metrics: TrainingMetrics = { step, train_loss };
    if (validLoss !== undefined) metrics.valid_loss = validLoss;
    for (const [key, value] of Object.entries(extra)) if (value !== undefined) (metrics as unknown as Record<string, number>)[key] = value;
    await this.progress.metrics(metrics);
  }

  private async checkpoint(path: string, fields: Record<string, unknown>): Promise<void> {
    const adapterPath = resolve(this.cwd, path);
    const magic = await readMagic(adapterPath);
    if (magic !== ggufMagic) {
      await this.progress.message('warn', `The trainer reported a checkpoint ${adapterPath} that is ${magic === null ? 'missing' : 'not a GGUF file'}; it is not kept.`);
      return;
    }
    const step = finite(fields['step']) ?? this.lastStep;
    const epoch = finite(fields['epoch']) ?? this.lastEpoch ?? 0;
    const metrics: Record<string, number> = {};
    for (const [key, value] of Object.entries(fields)) {
      if (key === 'step' || key === 'epoch') continue;
      const number = finite(value);
      if (number !== undefined) metrics[key] = number;
    }
    await this.progress.checkpoint({ step, epoch, adapterPath, metrics });
  }
}

function placeholderValues(run: TrainerRun, outputDir: string): Record<string, string> {
  const config = run.trainer;
  const baseLearningRate = config.trainer === 'command' ? config.learning_rate : 2e-4;
  const { n_epochs, batch_size, learning_rate_multiplier } = run.hyperparameters;
  return {
    training_file: run.trainingPath,
    validation_file: run.validationPath ?? '',
    output_dir: outputDir,
    base_model: run.baseModel.name,
    base_model_path: run.baseModel.provider === 'llama-cpp' ? resolve(run.baseModel.path) : '',
    n_epochs: String(n_epochs),
    batch_size: String(batch_size),
    // 12 significant digits: 2e-4 × 1.5 is 0.0003, not 0.00030000000000000003.
    learning_rate: String(Number((baseLearningRate * learning_rate_multiplier).toPrecision(12))),
    learning_rate_multiplier: String(learning_rate_multiplier),
    seed: String(run.seed),
    suffix: run.suffix ?? '',
    job_id: run.jobId,
  };
}

export function substitute(template: string, values: Record<string, string>): string {
  return template.replace(/\{([a-z_]+)\}/g, (whole, name: string) => (Object.hasOwn(values, name) ? values[name]! : whole));
}

/**
 * The previous run's command, if it still runs on this host (Chatgate crashed, or was killed,
 * while its detached trainer went on): its group is terminated before the command starts again.
 * Only a process whose command line matches is touched (the pid may have been reused).
 */
async function stopLeftover(previous: CommandState, progress: TrainerProgress, killGraceMs: number): Promise<void> {
  const { pid, host, argv } = previous;
  if (pid === undefined || argv === undefined || argv.length === 0) return;
  if (host !== hostname()) {
    await progress.message('warn', `The previous run of this job's trainer was on ${host ?? 'another host'}; if it still runs there, stop it (pid ${pid}).`);
    return;
  }
  if (!isAlive(pid)) return;
  let commandLine: string[];
  try {
    commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (commandLine.at(-1) === '') commandLine.pop();
  } catch {
    await progress.message('warn', `Process ${pid} of the previous run may still be running; it could not be checked, so it was left alone.`);
    return;
  }
  const rest = argv.slice(1);
  const tailMatches = commandLine.length >= rest.length && rest.every((part, offset) => commandLine[commandLine.length - rest.length + offset] === part);
  const programMatches = commandLine.slice(0, commandLine.length - rest.length).some((part) => basename(part) === basename(argv[0]!));
  if (!tailMatches || !programMatches) return;
  killGroup(pid, 'SIGTERM');
  const deadline = Date.now() + killGraceMs;
  while (isAlive(pid) && Date.now() < deadline) await abortableDelay(100);
  killGroup(pid, 'SIGKILL');
  await progress.message('info', `Stopped the trainer left running by the previous run (pid ${pid}); starting it again.`);
}

/** Whether the process exists and is not a zombie (dead, waiting to be reaped). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: alive, but someone else's.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state …"; comm may contain spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Gone already.
  }
}

/** SIGKILL to the group, then a short wait for it to be gone (so that its GPU memory is free for what comes next). */
async function killGroupAndWait(pid: number): Promise<void> {
  killGroup(pid, 'SIGKILL');
  const deadline = Date.now() + 2_000;
  for (;;) {
    try {
      process.kill(-pid, 0);
    } catch {
      return;
    }
    if (Date.now() >= deadline) return;
    await abortableDelay(20);
  }
}

/** The first 4 bytes of a file as text, or null when it does not exist. */
async function readMagic(path: string): Promise<string | null> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return null;
  }
  try {
    const buffer = Buffer.alloc(4);
    const { bytesRead } = await handle.read(buffer, 0, 4, 0);
    return buffer.subarray(0, bytesRead).toString('latin1');
  } finally {
    await handle.close();
  }
}

function readState(state: Record<string, unknown> | null): CommandState {
  const runs = typeof state?.['runs'] === 'number' ? state['runs'] : 0;
  const result: CommandState = { runs };
  if (typeof state?.['pid'] === 'number' && Number.isInteger(state['pid']) && state['pid'] > 0) result.pid = state['pid'];
  if (typeof state?.['host'] === 'string') result.host = state['host'];
  if (Array.isArray(state?.['argv']) && state['argv'].every((part) => typeof part === 'string')) result.argv = state['argv'] as string[];
  return result;
}

function stringEnvironment(environment: NodeJS.ProcessEnv): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [name, value] of Object.entries(environment)) if (value !== undefined) result[name] = value;
  return result;
}

function finite(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
