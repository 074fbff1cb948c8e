/**
 * A router model's targets as ordinary model entries (named like the router model), which
 * the providers are called with as `call.model`. Worked out once per router entry: the same
 * objects are handed to the providers at start (llama-cpp preloading) and on every call
 * (providers cache per configuration object).
 */
import { defaultTargetId, type RouterModelConfig, type RouterTargetConfig, type TargetModelConfig } from '../config/schema.js';

export interface ResolvedTargetConfig {
  id: string;
  weight: number;
  /** The entry the target's provider is called with. */
  config: TargetModelConfig;
  connectMs: number | undefined;
  firstTokenMs: number | undefined;
  totalMs: number | undefined;
}

const resolved = new WeakMap<RouterModelConfig, ResolvedTargetConfig[]>();

export function routerTargetConfigs(model: RouterModelConfig): ResolvedTargetConfig[] {
  let targets = resolved.get(model);
  if (targets === undefined) {
    targets = model.targets.map((target, index) => resolveTarget(model, target, index));
    resolved.set(model, targets);
  }
  return targets;
}

function resolveTarget(model: RouterModelConfig, target: RouterTargetConfig, index: number): ResolvedTargetConfig {
  const { id, weight, timeouts, ...entry } = target;
  const connectMs = timeouts?.connect_ms ?? model.timeouts.connect_ms;
  const config = { ...entry, name: model.name } as TargetModelConfig;
  if (config.provider === 'openai-compatible' && connectMs !== undefined) config.connect_timeout_ms = connectMs;
  return {
    id: id ?? defaultTargetId(target, index),
    weight,
    config,
    connectMs: config.provider === 'openai-compatible' ? config.connect_timeout_ms : undefined,
    firstTokenMs: timeouts?.first_token_ms ?? model.timeouts.first_token_ms,
    totalMs: timeouts?.total_ms ?? model.timeouts.total_ms,
  };
}
