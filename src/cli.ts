#!/usr/bin/env node
// The `bitcoin-hook-proxy` executable; the commands live in src/cli/.
import { runCli } from './cli/main.js';

runCli(process.argv.slice(2));
