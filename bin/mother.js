#!/usr/bin/env node
'use strict';
// The CLI. A MotherError is one line on stderr and an exit code (main() maps the codes); so is
// ERR_NO_ADDON should it escape main (no usable native addon: the line says what to run);
// anything else is a bug, printed with its stack (exit 70).
require('../dist/lib/cli/main.js').main(process.argv).then(
  (code) => { process.exitCode = code; },
  (err) => {
    if (err && err.name === 'MotherError' && err.code === 'ERR_NO_ADDON') {
      process.stderr.write(`mother: ${err.message}\n`);
      process.exitCode = 1;
      return;
    }
    process.stderr.write(`mother: internal error: ${err && err.stack ? err.stack : err}\n`);
    process.exitCode = 70;
  }
);
