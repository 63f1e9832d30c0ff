'use strict';
// Lets child processes spawned by tests (the CLI, a collector, a sync killed mid-run) run the TypeScript
// sources directly, so tests never depend on a stale dist/. Transpile-only: `npm run typecheck` checks types.
const fs = require('node:fs');
const ts = require('typescript');

require.extensions['.ts'] = function register(module, filename) {
  const source = fs.readFileSync(filename, 'utf8');
  const out = ts.transpileModule(source, {
    fileName: filename,
    compilerOptions: {
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
      resolveJsonModule: true,
      inlineSourceMap: true,
    },
  });
  module._compile(out.outputText, filename);
};
