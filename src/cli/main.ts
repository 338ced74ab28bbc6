#!/usr/bin/env node
/**
 * The `keel` command (`bin` of the package). See docs/cli.md, or run `keel --help`.
 */
import { run } from './program.js';

const code = await run(process.argv.slice(2));
// Exit now: an idle keep-alive socket to the admin API must not hold the prompt for seconds.
// `keel start` returns no code: the app it started keeps the process until a signal.
if (code !== undefined) process.exit(code);
