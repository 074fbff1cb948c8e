/**
 * node-llama-cpp, imported on first use: importing it costs ~0.8 s, which a server without
 * llama-cpp models (or before the first llama-cpp request) should not pay at start-up.
 */
export type NodeLlamaCpp = typeof import('node-llama-cpp');

let loading: Promise<NodeLlamaCpp> | undefined;

export function importNodeLlamaCpp(): Promise<NodeLlamaCpp> {
  return (loading ??= import('node-llama-cpp').catch((error: unknown) => {
    loading = undefined;
    throw error;
  }));
}
