#!/usr/bin/env node
// Entry point of the `chatgate` command. The TypeScript sources are compiled to dist/ by
// `npm ci` (the `prepare` script), so no build step is needed before running this.
import { runCli } from '../dist/cli/main.js';

// A command that failed ends at once, even if something it opened would keep the process
// alive (a `serve` whose port is taken must not hang); a success ends on its own.
runCli(process.argv.slice(2)).then(
  (code) => {
    if (typeof code === 'number' && code !== 0) process.exit(code);
    if (typeof code === 'number') process.exitCode = code;
  },
  (error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
