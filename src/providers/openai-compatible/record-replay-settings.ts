/**
 * The record/replay settings in effect: the config's `record_replay`, overridden by
 * `CHATGATE_RECORD_REPLAY` (off | record | replay | replay_or_record) and `CHATGATE_CASSETTE`
 * (the cassette path), so that CI can switch modes without editing the file.
 */
import { isAbsolute, resolve } from 'node:path';
import type { RecordReplaySettings } from './record-replay-client.js';
import { ConfigError } from '../../config/load-config.js';
import type { RecordReplayConfig } from '../../config/schema.js';

const modes = ['off', 'record', 'replay', 'replay_or_record'] as const;

/** The settings, or undefined when record/replay is off. Throws a ConfigError for a bad environment value. */
export function resolveRecordReplay(
  config: RecordReplayConfig | undefined,
  environment: NodeJS.ProcessEnv,
  workingDirectory: string,
): RecordReplaySettings | undefined {
  let mode: (typeof modes)[number] = config?.mode ?? 'off';
  const modeVariable = environment.CHATGATE_RECORD_REPLAY?.trim();
  if (modeVariable !== undefined && modeVariable !== '') {
    const lower = modeVariable.toLowerCase();
    if (!(modes as readonly string[]).includes(lower)) {
      throw new ConfigError(`CHATGATE_RECORD_REPLAY must be one of ${modes.join(', ')}; got '${modeVariable}'.`);
    }
    mode = lower as (typeof modes)[number];
  }
  if (mode === 'off') return undefined;
  const cassetteVariable = environment.CHATGATE_CASSETTE?.trim();
  const file = cassetteVariable !== undefined && cassetteVariable !== '' ? cassetteVariable : (config?.file ?? 'chatgate-cassette.jsonl');
  return {
    mode,
    file: isAbsolute(file) ? file : resolve(workingDirectory, file),
    match: config?.match ?? 'body_and_path',
    replayTiming: config?.replay_timing ?? false,
  };
}
