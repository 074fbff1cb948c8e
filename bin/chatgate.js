#!/usr/bin/env node
// Entry point of the `chatgate` command. The TypeScript sources are compiled to dist/ by
// `npm ci` (the `prepare` script), so no build step is needed before running this.
import { runCli } from '../dist/cli/main.js';

runCli(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number') process.exitCode = code;
  },
  (error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  },
);
