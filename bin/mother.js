#!/usr/bin/env node
'use strict';
require('../dist/lib/cli/main.js').main(process.argv).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`mother: internal error: ${err && err.stack ? err.stack : err}\n`); process.exitCode = 70; }
);
