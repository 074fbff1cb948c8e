/**
 * The `router` provider: one model name served by several targets (each an ordinary model
 * entry with its own provider). A request tries targets in the order of the model's strategy,
 * skipping targets whose circuit is open, retrying retryable failures (connection errors,
 * timeouts, 408/409/429, 5xx, malformed answers) with exponential backoff and full jitter or
 * the upstream's `retry-after`, up to `retry.max_attempts` tries in all. A client's fault
 * (any other 4xx) is returned at once.
 *
 * Streams: the first content part of a target's stream is awaited (within the first-token
 * timeout) before anything is handed on; until then a failure moves on to the next attempt.
 * After it, parts flow through unchanged and a failure propagates (an SSE error frame).
 *
 * The target that served an answer is named in `ChatResult.target` / the stream's first
 * `metadata` part. When every attempt fails, one GatewayError names each target and why.
 */
import { clientClosedRequest } from '../providers/openai-compatible/upstream-error.js';
import type { Logger } from 'pino';
import type { RouterModelConfig } from '../config/schema.js';
import { GatewayError } from '../errors/gateway-error.js';
import type { RouterObserver, TargetOutcome } from './router-observer.js';
import type { ChatCompletionRequest } from '../openai/chat-completion-request.js';
import type { CompletionRequest } from '../openai/completion-request.js';
import type { EmbeddingRequest } from '../openai/embedding-request.js';
import type { ChatResult, CompletionResult, EmbeddingResult, Provider, ProviderCall, ProviderCapabilities, StreamPart } from '../providers/spec.js';
import { backoffDelay, sleep } from './backoff.js';
import { CircuitBreaker, type CircuitPermit } from './circuit-breaker.js';
import { allTargetsFailed, circuitOpenFailure, classifyFailure, TargetTimeoutError, type AttemptFailure, type FailureKind, type TargetFailure } from './failures.js';
import { planTargets, updateEwma } from './strategies.js';
import { chatFeatures, decideRoute, promptFeatures, type Classify, type RequestFeatures } from './task-routing.js';
import { routerTargetConfigs, type ResolvedTargetConfig } from './target-configs.js';

export interface RouterTarget extends ResolvedTargetConfig {
  provider: Provider;
  breaker: CircuitBreaker;
  latencyEwma: number | undefined;
  readonly available: boolean;
}

export interface RouterProviderOptions {
  model: RouterModelConfig;
  /** The provider of each target entry (created by provider kind, as for ordinary models). */
  providerFor: (target: ResolvedTargetConfig) => Provider;
  metrics?: RouterObserver | undefined;
  logger?: Logger | undefined;
  /**
   * Prompt tokens of a chat request / a text (routing rules on prompt length). `limit`: the
   * rules only need to know whether the count is above it, so counting may stop there and
   * return any number above it (see TokenCounter.countAsync).
   */
  countChat?: (request: ChatCompletionRequest, limit: number) => number | Promise<number>;
  countText?: (text: string, limit: number) => number | Promise<number>;
  /** Asks the routing policy's classifier model for a label. */
  classify?: Classify;
  /** For tests. */
  random?: () => number;
  now?: () => number;
}

/** Targets a request prefers (routing by task), tried first in the strategy's order. */
interface Route {
  preferred: RouterTarget[];
  /** Only the preferred targets are tried. */
  exclusive: boolean;
  reason: string;
}

interface Committed {
  target: RouterTarget;
  permit: CircuitPermit;
  watch: AttemptWatch;
  iterator: AsyncIterator<StreamPart>;
  buffered: StreamPart[];
}

const outcomeOf: Record<FailureKind, TargetOutcome> = {
  http: 'error',
  rate_limited: 'rate_limited',
  timeout: 'timeout',
  connection: 'error',
  circuit_open: 'error',
  internal: 'error',
};

export class RouterProvider implements Provider {
  readonly capabilities: ProviderCapabilities;
  readonly targets: RouterTarget[];
  readonly embed?: (request: EmbeddingRequest, call: ProviderCall) => Promise<EmbeddingResult>;
  readonly #model: RouterModelConfig;
  readonly #metrics: RouterObserver | undefined;
  readonly #logger: Logger | undefined;
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #countChat: RouterProviderOptions['countChat'];
  readonly #countText: RouterProviderOptions['countText'];
  readonly #classify: Classify | undefined;

  constructor(options: RouterProviderOptions) {
    const model = options.model;
    this.#model = model;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
    this.#countChat = options.countChat;
    this.#countText = options.countText;
    this.#classify = options.classify;
    this.targets = routerTargetConfigs(model).map((resolved) => {
      const breaker: CircuitBreaker = new CircuitBreaker({
        failureThreshold: model.breaker.failure_threshold,
        cooldownMs: model.breaker.cooldown_ms,
        ...(options.now ? { now: options.now } : {}),
        onTransition: (transition) => {
          this.#metrics?.circuit(model.name, resolved.id, transition.to, transition.from);
          const fields = { model: model.name, target: resolved.id, from: transition.from, to: transition.to, reason: transition.reason };
          if (transition.to === 'open') this.#logger?.warn(fields, `Circuit of target '${resolved.id}' of model '${model.name}' opened`);
          else this.#logger?.info(fields, `Circuit of target '${resolved.id}' of model '${model.name}' is ${transition.to}`);
        },
      });
      return {
        ...resolved,
        provider: options.providerFor(resolved),
        breaker,
        latencyEwma: undefined,
        get available() {
          return breaker.available;
        },
      };
    });
    for (const target of this.targets) this.#metrics?.circuit(model.name, target.id, 'closed', undefined);
    this.capabilities = {
      vision: this.targets.every((target) => target.provider.capabilities.vision),
      logprobs: this.targets.every(
        (target) => target.provider.capabilities.logprobs && !('logprobs' in target.config && target.config.logprobs === false),
      ),
    };
    const embedding = this.targets.filter((target) => target.provider.embed !== undefined);
    if (embedding.length > 0) {
      this.embed = (request, call) =>
        this.#runWhole(call, embedding, (target, targetCall) => (target.provider.embed as NonNullable<Provider['embed']>)(request, targetCall)).then(
          ({ result, target }) => ({ ...result, target: target.id }),
        );
    }
  }

  async chat(request: ChatCompletionRequest, call: ProviderCall): Promise<ChatResult> {
    const route = await this.#route(() => this.#chatFeatures(request), call);
    const { result, target } = await this.#runWhole(call, this.targets, (target, targetCall) => target.provider.chat(request, targetCall), route);
    return { ...result, target: target.id };
  }

  async complete(request: CompletionRequest, call: ProviderCall): Promise<CompletionResult> {
    const route = await this.#route(() => this.#promptFeatures(request), call);
    const { result, target } = await this.#runWhole(call, this.targets, (target, targetCall) => target.provider.complete(request, targetCall), route);
    return { ...result, target: target.id };
  }

  streamChat(request: ChatCompletionRequest, call: ProviderCall): AsyncIterable<StreamPart> {
    return this.#stream(call, (target, targetCall) => target.provider.streamChat(request, targetCall), () => this.#chatFeatures(request));
  }

  streamComplete(request: CompletionRequest, call: ProviderCall): AsyncIterable<StreamPart> {
    return this.#stream(call, (target, targetCall) => target.provider.streamComplete(request, targetCall), () => this.#promptFeatures(request));
  }

  /** The largest prompt-length threshold of the routing rules (undefined: none, no need to count). */
  #tokenLimit(): number | undefined {
    let limit: number | undefined;
    for (const rule of this.#model.routing?.rules ?? []) {
      for (const threshold of [rule.when.min_prompt_tokens, rule.when.max_prompt_tokens]) {
        if (threshold !== undefined) limit = Math.max(limit ?? 0, threshold);
      }
    }
    return limit;
  }

  async #chatFeatures(request: ChatCompletionRequest): Promise<RequestFeatures> {
    const limit = this.#tokenLimit();
    return chatFeatures(request, limit === undefined ? 0 : ((await this.#countChat?.(request, limit)) ?? 0));
  }

  async #promptFeatures(request: CompletionRequest): Promise<RequestFeatures> {
    const text = typeof request.prompt === 'string' ? request.prompt : Array.isArray(request.prompt) && typeof request.prompt[0] === 'string' ? (request.prompt as string[]).join('\n') : '';
    const limit = this.#tokenLimit();
    return promptFeatures(text, limit === undefined ? 0 : ((await this.#countText?.(text, limit)) ?? 0));
  }

  /** The targets the request prefers, by the model's routing policy (undefined: no policy or no decision). */
  async #route(features: () => Promise<RequestFeatures>, call: ProviderCall): Promise<Route | undefined> {
    const policy = this.#model.routing;
    if (!policy) return undefined;
    const decision = await decideRoute(policy, await features(), this.#classify, call.signal);
    if (!decision) return undefined;
    const preferred = decision.targetIds.flatMap((id) => this.targets.filter((target) => target.id === id));
    this.#logger?.debug({ model: this.#model.name, route: decision.reason, targets: decision.targetIds }, 'Routed a request by task');
    return { preferred, exclusive: policy.exclusive, reason: decision.reason };
  }

  /** The targets' providers are shared with other models and closed by the server. */
  async close(): Promise<void> {}

  // -------------------------------------------------------------------------------------------

  async #runWhole<T>(
    call: ProviderCall,
    eligible: RouterTarget[],
    send: (target: RouterTarget, call: ProviderCall) => Promise<T>,
    route?: Route,
  ): Promise<{ result: T; target: RouterTarget }> {
    return this.#attempts(call, eligible, route, async (target, permit) => {
      const watch = new AttemptWatch(call.signal, target.id);
      watch.arm(target.totalMs, 'whole answer');
      const started = performance.now();
      try {
        const result = await watch.race(Promise.resolve().then(() => send(target, { ...call, model: target.config, signal: watch.signal })));
        const seconds = (performance.now() - started) / 1000;
        target.latencyEwma = updateEwma(target.latencyEwma, seconds);
        this.#metrics?.latency(this.#model.name, target.id, seconds);
        this.#metrics?.attempt(this.#model.name, target.id, 'success');
        permit.success();
        return { result, target };
      } finally {
        watch.dispose();
      }
    });
  }

  async *#stream(
    call: ProviderCall,
    open: (target: RouterTarget, call: ProviderCall) => AsyncIterable<StreamPart>,
    features: () => Promise<RequestFeatures>,
  ): AsyncGenerator<StreamPart> {
    const route = await this.#route(features, call);
    const committed = await this.#attempts(call, this.targets, route, (target, permit) => this.#openStream(target, permit, call, open));
    const { target, permit, watch, iterator } = committed;
    let finished = false;
    try {
      yield { type: 'metadata', target: target.id };
      for (const part of committed.buffered) yield part;
      committed.buffered.length = 0;
      for (;;) {
        const next = await watch.race(iterator.next());
        if (next.done) break;
        yield next.value;
      }
      finished = true;
      this.#metrics?.attempt(this.#model.name, target.id, 'success');
      permit.success();
    } catch (error) {
      finished = true;
      if (call.signal.aborted) {
        this.#metrics?.attempt(this.#model.name, target.id, 'cancelled');
        permit.neutral();
      } else {
        const failure = classifyFailure(error);
        this.#metrics?.attempt(this.#model.name, target.id, failure.retryable ? outcomeOf[failure.kind] : 'client_error');
        if (failure.retryable) permit.failure(failure.reason);
        else permit.neutral();
        this.#logger?.warn({ model: this.#model.name, target: target.id, reason: failure.reason }, 'A target failed after the first part of its stream');
      }
      throw error;
    } finally {
      if (!finished) {
        // The consumer stopped early (the client went away).
        this.#metrics?.attempt(this.#model.name, target.id, 'cancelled');
        permit.neutral();
        iterator.return?.()?.catch(() => undefined);
      }
      watch.dispose();
    }
  }

  /** Opens a target's stream and waits for its first content part (metadata and role parts are kept). */
  async #openStream(
    target: RouterTarget,
    permit: CircuitPermit,
    call: ProviderCall,
    open: (target: RouterTarget, call: ProviderCall) => AsyncIterable<StreamPart>,
  ): Promise<Committed> {
    const watch = new AttemptWatch(call.signal, target.id);
    watch.arm(target.totalMs, 'whole answer');
    watch.arm(target.firstTokenMs, 'first token');
    const started = performance.now();
    let iterator: AsyncIterator<StreamPart> | undefined;
    const buffered: StreamPart[] = [];
    try {
      iterator = open(target, { ...call, model: target.config, signal: watch.signal })[Symbol.asyncIterator]();
      for (;;) {
        const next = await watch.race((iterator as AsyncIterator<StreamPart>).next());
        if (next.done) break;
        buffered.push(next.value);
        if (next.value.type !== 'metadata' && next.value.type !== 'role') break;
      }
    } catch (error) {
      iterator?.return?.()?.catch(() => undefined);
      watch.dispose();
      throw error;
    }
    watch.disarm('first token');
    const seconds = (performance.now() - started) / 1000;
    target.latencyEwma = updateEwma(target.latencyEwma, seconds);
    this.#metrics?.latency(this.#model.name, target.id, seconds);
    return { target, permit, watch, iterator, buffered };
  }

  /**
   * The attempt loop shared by whole answers and streams. `attempt` resolves with the answer
   * (having reported success on the permit itself) or throws the attempt's failure.
   */
  async #attempts<T>(call: ProviderCall, eligible: RouterTarget[], route: Route | undefined, attempt: (target: RouterTarget, permit: CircuitPermit) => Promise<T>): Promise<T> {
    const model = this.#model;
    const retry = model.retry;
    const preferred = route?.preferred.filter((target) => eligible.includes(target)) ?? [];
    const plan =
      preferred.length === 0
        ? planTargets(model.strategy, eligible, this.#random)
        : [
            ...planTargets(model.strategy, preferred, this.#random),
            ...(route?.exclusive ? [] : planTargets(model.strategy, eligible.filter((target) => !preferred.includes(target)), this.#random)),
          ];
    const failures = new Map<RouterTarget, AttemptFailure>();
    const tried = new Set<RouterTarget>();
    let attempts = 0;
    let cursor = 0;
    while (attempts < retry.max_attempts) {
      let chosen: RouterTarget | undefined;
      let permit: CircuitPermit | undefined;
      let wait = 0;
      for (let scanned = 0; scanned < plan.length && chosen === undefined; scanned++) {
        const position = (cursor + scanned) % plan.length;
        const target = plan[position] as RouterTarget;
        let delay = 0;
        if (tried.has(target)) {
          const asked = failures.get(target)?.retryAfterMs;
          if (asked !== undefined && asked > retry.max_retry_after_ms) continue;
          delay = asked ?? backoffDelay(attempts, { baseDelayMs: retry.base_delay_ms, maxDelayMs: retry.max_delay_ms }, this.#random);
        }
        const granted = target.breaker.tryAcquire();
        if (granted === undefined) {
          if (!tried.has(target)) failures.set(target, circuitOpenFailure(target.breaker.reopensAt - this.#now()));
          continue;
        }
        chosen = target;
        permit = granted;
        wait = delay;
        cursor = position + 1;
      }
      if (chosen === undefined || permit === undefined) {
        if (attempts > 0 || plan.length === 0) break;
        // Every circuit is open: try the target whose cooldown ends first rather than none.
        chosen = plan.reduce((best, target) => (target.breaker.reopensAt < best.breaker.reopensAt ? target : best));
        permit = chosen.breaker.forceAcquire();
        failures.delete(chosen);
        cursor = plan.indexOf(chosen) + 1;
      }
      if (wait > 0) {
        try {
          await sleep(wait, call.signal);
        } catch (error) {
          permit.neutral();
          throw error instanceof GatewayError ? error : clientClosedRequest();
        }
      }
      attempts++;
      if (attempts > 1) this.#metrics?.retry(model.name);
      tried.add(chosen);
      try {
        return await attempt(chosen, permit);
      } catch (error) {
        if (call.signal.aborted) {
          permit.neutral();
          this.#metrics?.attempt(model.name, chosen.id, 'cancelled');
          throw error instanceof GatewayError ? error : clientClosedRequest();
        }
        const failure = classifyFailure(error);
        if (!failure.retryable) {
          // The client's fault: the target answered, and another one would answer the same.
          permit.neutral();
          this.#metrics?.attempt(model.name, chosen.id, 'client_error');
          throw error;
        }
        permit.failure(failure.reason);
        this.#metrics?.attempt(model.name, chosen.id, outcomeOf[failure.kind]);
        failures.set(chosen, failure);
        this.#logger?.info(
          { model: model.name, target: chosen.id, attempt: attempts, reason: failure.reason },
          `Target '${chosen.id}' of model '${model.name}' failed`,
        );
      }
    }
    this.#metrics?.exhausted(model.name);
    const listed: TargetFailure[] = plan.flatMap((target) => {
      const failure = failures.get(target);
      return failure === undefined ? [] : [{ targetId: target.id, failure }];
    });
    throw allTargetsFailed(model.name, eligible.length, listed, retry.max_attempts);
  }
}


/**
 * One attempt's signal and deadlines: aborts the target's call when the client goes away or a
 * timeout elapses, and makes `race()` reject at once then (even if the provider is slow to
 * notice the abort).
 */
class AttemptWatch {
  readonly #controller = new AbortController();
  readonly #parent: AbortSignal;
  readonly #targetId: string;
  readonly #timers = new Map<'first token' | 'whole answer', NodeJS.Timeout>();
  readonly #failed: Promise<never>;
  #fail!: (error: GatewayError) => void;
  #disposed = false;

  constructor(parent: AbortSignal, targetId: string) {
    this.#parent = parent;
    this.#targetId = targetId;
    this.#failed = new Promise<never>((_resolve, reject) => {
      this.#fail = reject;
    });
    this.#failed.catch(() => undefined);
    if (parent.aborted) this.handleEvent();
    else parent.addEventListener('abort', this, { once: true });
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  arm(milliseconds: number | undefined, waitingFor: 'first token' | 'whole answer'): void {
    if (milliseconds === undefined || this.#disposed) return;
    const timer = setTimeout(() => {
      const error = new TargetTimeoutError(this.#targetId, milliseconds, waitingFor);
      this.#fail(error);
      this.#controller.abort(error);
    }, milliseconds);
    timer.unref();
    this.#timers.set(waitingFor, timer);
  }

  disarm(waitingFor: 'first token' | 'whole answer'): void {
    const timer = this.#timers.get(waitingFor);
    if (timer !== undefined) clearTimeout(timer);
    this.#timers.delete(waitingFor);
  }

  race<T>(promise: Promise<T>): Promise<T> {
    return Promise.race([promise, this.#failed]);
  }

  /** The client went away. */
  handleEvent(): void {
    this.#fail(clientClosedRequest());
    this.#controller.abort(this.#parent.reason);
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#parent.removeEventListener('abort', this);
  }
}

export function createRouterProvider(options: RouterProviderOptions): RouterProvider {
  return new RouterProvider(options);
}
