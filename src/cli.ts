#!/usr/bin/env node
// The `bitcoin-hook-proxy` executable; the commands live in src/cli/.
// The V8 settings first, and the commands loaded only after them: loading the ~200 modules is
// itself work the settings are for (see v8-tuning.ts).
import './v8-tuning.js';

const { runCli } = await import('./cli/main.js');
runCli(process.argv.slice(2));
