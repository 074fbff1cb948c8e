/** The synthetic GGUF writer lives in src/testing/ (compiled to dist/testing/, used by bench/); re-exported for the tests. */
export * from '../../src/testing/synthetic-gguf.js';
