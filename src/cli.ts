#!/usr/bin/env node
// The `bitcoin-hook-proxy` executable; the commands live in src/cli/.
import './v8-tuning.js'; // first: before the other modules grow the heap
import { runCli } from './cli/main.js';

runCli(process.argv.slice(2));
