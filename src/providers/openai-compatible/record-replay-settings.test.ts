import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../config/load-config.js';
import { resolveRecordReplay } from './record-replay-settings.js';
import { recordReplayConfig } from '../../config/schema.js';

describe('record_replay settings', () => {
  const defaults = recordReplayConfig.parse({});

  it('is off by default, and resolves the file against the working directory', () => {
    expect(resolveRecordReplay(defaults, {}, '/work')).toBeUndefined();
    expect(resolveRecordReplay({ ...defaults, mode: 'replay', file: 'ci/cassette.jsonl' }, {}, '/work')).toEqual({
      mode: 'replay',
      file: '/work/ci/cassette.jsonl',
      match: 'body_and_path',
      replayTiming: false,
    });
  });

  it('takes CHATGATE_RECORD_REPLAY and CHATGATE_CASSETTE over the file', () => {
    const settings = resolveRecordReplay(defaults, { CHATGATE_RECORD_REPLAY: 'record', CHATGATE_CASSETTE: '/tmp/c.jsonl' }, '/work');
    expect(settings).toMatchObject({ mode: 'record', file: '/tmp/c.jsonl' });
    expect(resolveRecordReplay({ ...defaults, mode: 'replay' }, { CHATGATE_RECORD_REPLAY: 'off' }, '/work')).toBeUndefined();
    expect(resolveRecordReplay(defaults, { CHATGATE_RECORD_REPLAY: 'replay' }, '/work')?.file).toBe('/work/chatgate-cassette.jsonl');
  });

  it('refuses a bad mode, naming the variable', () => {
    expect(() => resolveRecordReplay(defaults, { CHATGATE_RECORD_REPLAY: 'playback' }, '/work')).toThrow(ConfigError);
    expect(() => resolveRecordReplay(defaults, { CHATGATE_RECORD_REPLAY: 'playback' }, '/work')).toThrow(/CHATGATE_RECORD_REPLAY must be one of/);
    expect(recordReplayConfig.safeParse({ mode: 'rewind' }).success).toBe(false);
    expect(recordReplayConfig.safeParse({ match: 'path' }).success).toBe(false);
    expect(recordReplayConfig.safeParse({ extra: 1 }).success).toBe(false);
  });
});
