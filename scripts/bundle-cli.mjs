#!/usr/bin/env node
/**
 * Rewrites dist/cli/bin.js (tsc's output) as one file holding the CLI and its
 * dependencies. Node spends ~0.15 s resolving, reading and compiling the ~400
 * module files of the unbundled CLI before it can open the first connection:
 * a fixed cost of every run, a tenth of a no-op run on 100 hosts. The other
 * files under dist/ stay as tsc wrote them, for programs that import them.
 *
 * ssh2 stays outside: it loads an optional native addon by a path relative
 * to its own files.
 */
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/cli/bin.js'],
  outfile: 'dist/cli/bin.js',
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['ssh2'],
  // CommonJS dependencies (handlebars, ajv) call require(); an ES module has none of its own.
  banner: {
    js: "import { createRequire as sshfixCreateRequire } from 'node:module'; const require = sshfixCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
