#!/usr/bin/env node
'use strict';
// The CLI is TypeScript compiled into dist/ by `npm ci` / `npm install` (the `prepare` script).
const fs = require('node:fs');
const path = require('node:path');

const entry = path.join(__dirname, '..', 'dist', 'src', 'cli', 'run.js');
if (!fs.existsSync(entry)) {
  process.stderr.write(
    `error: cdp-lifecycle is not built (${path.relative(process.cwd(), entry) || entry} is missing): run \`npm run build\` in ${path.resolve(__dirname, '..')}.\n`,
  );
  process.exit(1);
}
require(entry);
