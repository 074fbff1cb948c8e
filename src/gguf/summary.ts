/** GGUF checks: the magic bytes (cheap, no dependency) and the metadata through node-llama-cpp. */
import { open } from 'node:fs/promises';
import { GGUF_MAGIC } from './format.js';

/** Whether the file starts with the GGUF magic bytes. */
export async function hasGgufMagic(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(4);
    const { bytesRead } = await handle.read(buffer, 0, 4, 0);
    return bytesRead === 4 && buffer.toString('latin1') === GGUF_MAGIC;
  } finally {
    await handle.close();
  }
}

export interface GgufSummary {
  architecture: string | null;
  /** Display name from `general.name`. */
  modelName: string | null;
  /** Parameter count, summed over the tensors. */
  parameters: number | null;
  /** `general.size_label` when present (e.g. "8B"). */
  sizeLabel: string | null;
  /** Quantization, e.g. Q4_K_M, F16. */
  fileType: string | null;
  contextLength: number | null;
}

/** Metadata keys that are large and not needed for a summary. */
const IGNORED_KEYS = ['tokenizer.ggml.tokens', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type', 'tokenizer.ggml.merges', 'tokenizer.chat_template'];

/** Reads a GGUF file's header (not the weights) with node-llama-cpp, imported on first use. */
export async function readGgufSummary(path: string): Promise<GgufSummary> {
  const { readGgufFileInfo, GgufFileType } = await import('node-llama-cpp');
  const info = await readGgufFileInfo(path, { sourceType: 'filesystem', ignoreKeys: IGNORED_KEYS, logWarnings: false });
  const general = info.metadata.general as { architecture?: unknown; name?: unknown; size_label?: unknown; file_type?: unknown } | undefined;
  let parameters: number | null = null;
  const tensors = info.fullTensorInfo ?? info.tensorInfo;
  if (tensors) {
    parameters = 0;
    for (const tensor of tensors) parameters += tensor.dimensions.reduce<number>((product, size) => product * Number(size), 1);
  }
  let fileType: string | null = null;
  if (typeof general?.file_type === 'number') {
    const name = (GgufFileType as unknown as Record<number, string | undefined>)[general.file_type];
    fileType = name ? name.replace(/^(MOSTLY|ALL)_/, '') : String(general.file_type);
  }
  const contextLength = (info.architectureMetadata as { context_length?: unknown }).context_length;
  return {
    architecture: typeof general?.architecture === 'string' ? general.architecture : null,
    modelName: typeof general?.name === 'string' ? general.name : null,
    parameters,
    sizeLabel: typeof general?.size_label === 'string' ? general.size_label : null,
    fileType,
    contextLength: typeof contextLength === 'number' || typeof contextLength === 'bigint' ? Number(contextLength) : null,
  };
}
