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
import fs from 'node:fs';
import { build } from 'esbuild';

const OUTFILE = 'dist/cli/bin.js';

/**
 * The first two lines of the installed `sshfix` command. Run as a program (how
 * npm's bin link runs it), /bin/sh reads them: `":"` does nothing and `exec`
 * starts node on this same file with a young generation of at most 2 MB per
 * semi-space; node reads line 1 as a hashbang and line 2 as a string and a
 * comment. V8 sizes its young generation at start-up only (a flag set later
 * is ignored), and by default lets it reach 3 x 16 MB: most of what a
 * 1,000-host run keeps resident beyond the ~30 MB it uses (bench/README.md).
 * `#!/usr/bin/env -S node ...` would say the same, but env -S is missing
 * from busybox (Alpine images) and coreutils before 8.30. The price: npm's
 * Windows shim would look for /bin/sh; the command needs a POSIX shell, as
 * on Linux, macOS and WSL. `node dist/cli/bin.js` skips both lines and runs
 * with V8's defaults.
 */
const PROGRAM_START = ['#!/bin/sh', '":" //; exec node --max-semi-space-size=2 "$0" "$@"'];

await build({
  entryPoints: ['dist/cli/bin.js'],
  outfile: OUTFILE,
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

const bundled = fs.readFileSync(OUTFILE, 'utf8');
const hashbang = '#!/usr/bin/env node\n';
if (!bundled.startsWith(hashbang)) throw new Error(`${OUTFILE} does not start with ${hashbang.trim()}`);
fs.writeFileSync(OUTFILE, [...PROGRAM_START, bundled.slice(hashbang.length)].join('\n'));
fs.chmodSync(OUTFILE, 0o755);
