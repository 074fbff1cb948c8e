import { describe, expect, it } from 'vitest';
import { PullError } from './errors.js';
import { RepoWithoutFileError, modelNameFromFile, parseSource } from './source.js';

const env = {};

describe('parseSource', () => {
  it('takes a plain https or http URL of a .gguf file', () => {
    expect(parseSource('https://example.com/models/Llama-3.2-1B.Q4_K_M.gguf', env)).toMatchObject({
      url: 'https://example.com/models/Llama-3.2-1B.Q4_K_M.gguf',
      fileName: 'Llama-3.2-1B.Q4_K_M.gguf',
      huggingFace: null,
    });
    expect(parseSource('http://127.0.0.1:9/a%20b.gguf?x=1', env)).toMatchObject({ fileName: 'a b.gguf', url: 'http://127.0.0.1:9/a%20b.gguf?x=1' });
  });

  it('refuses URLs without a .gguf file name, other schemes and credentials', () => {
    expect(() => parseSource('https://example.com/download?id=3', env)).toThrow(PullError);
    expect(() => parseSource('https://example.com/', env)).toThrow(/file name|\.gguf/);
    expect(() => parseSource('ftp://example.com/a.gguf', env)).toThrow(/scheme/);
    expect(() => parseSource('https://user:pw@example.com/a.gguf', env)).toThrow(/password/);
  });

  it('resolves Hugging Face forms to /resolve/{revision}/{file} on the default endpoint', () => {
    const expected = 'https://huggingface.co/bartowski/Llama-3.2-1B-Instruct-GGUF/resolve/main/Llama-3.2-1B-Instruct-Q4_K_M.gguf';
    expect(parseSource('bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q4_K_M.gguf', env).url).toBe(expected);
    expect(parseSource('hf:bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q4_K_M.gguf', env).url).toBe(expected);
    const source = parseSource('hf:owner/repo/sub dir/file.gguf', env);
    expect(source.url).toBe('https://huggingface.co/owner/repo/resolve/main/sub%20dir/file.gguf');
    expect(source.fileName).toBe('file.gguf');
    expect(source.huggingFace).toEqual({ endpoint: 'https://huggingface.co', repo: 'owner/repo', revision: 'main', file: 'sub dir/file.gguf' });
  });

  it('takes a revision after the repo or after the file', () => {
    expect(parseSource('owner/repo@v1.0/file.gguf', env).url).toBe('https://huggingface.co/owner/repo/resolve/v1.0/file.gguf');
    expect(parseSource('owner/repo/file.gguf@abc123', env).url).toBe('https://huggingface.co/owner/repo/resolve/abc123/file.gguf');
    expect(parseSource('owner/repo/file.gguf@refs/pr/1', env).url).toBe('https://huggingface.co/owner/repo/resolve/refs%2Fpr%2F1/file.gguf');
    expect(() => parseSource('owner/repo@a/file.gguf@b', env)).toThrow(/Two revisions/);
  });

  it('uses HF_ENDPOINT (trailing slash or not) and recognises its URLs, browser blob links included', () => {
    const environment = { HF_ENDPOINT: 'http://127.0.0.1:8000/hf/' };
    expect(parseSource('owner/repo/file.gguf', environment).url).toBe('http://127.0.0.1:8000/hf/owner/repo/resolve/main/file.gguf');
    const blob = parseSource('https://huggingface.co/owner/repo/blob/main/file.gguf', env);
    expect(blob.url).toBe('https://huggingface.co/owner/repo/resolve/main/file.gguf');
    expect(blob.huggingFace?.repo).toBe('owner/repo');
    expect(() => parseSource('x/y.gguf', { HF_ENDPOINT: 'not a url' })).toThrow(/HF_ENDPOINT/);
  });

  it('says a file name is needed when only a repo is named', () => {
    expect(() => parseSource('owner/repo', env)).toThrow(RepoWithoutFileError);
    expect(() => parseSource('hf:owner/repo@main', env)).toThrow(/names a repo but no file/);
    expect(() => parseSource('owner/repo/README.md', env)).toThrow(/does not name a .gguf file/);
  });

  it('refuses nonsense with a usage exit code', () => {
    for (const text of ['', 'model.gguf', 'owner/../x.gguf', 'owner/repo/../x.gguf', 'a b/c/d.gguf']) {
      try {
        parseSource(text, env);
        expect.unreachable(text);
      } catch (error) {
        expect(error).toBeInstanceOf(PullError);
        expect((error as PullError).exitCode).toBe(2);
      }
    }
  });
});

describe('modelNameFromFile', () => {
  it('lowercases and strips .gguf', () => {
    expect(modelNameFromFile('Llama-3.2-1B-Instruct-Q4_K_M.gguf')).toBe('llama-3.2-1b-instruct-q4_k_m');
    expect(modelNameFromFile('My Model.GGUF')).toBe('my-model');
  });
});
