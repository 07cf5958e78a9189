/**
 * Tests that run the CLI as users do run dist/, not src/. `npm test` builds
 * first (pretest); `npx jest <file>` and `npm run test:lab` do not, and a
 * dist/ older than src/ then tests code that is no longer there. Refuse to
 * start instead, naming the newest source file. The lab project's global
 * setup (every lab test runs dist/), and called by the unit tests that run it;
 * other unit tests run src/ and need no build.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The newest .ts file under `dir`, with its modification time in ms. */
function newestSource(dir) {
  let newest = { file: '', mtimeMs: 0 };
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    const candidate = entry.isDirectory()
      ? newestSource(full)
      : entry.name.endsWith('.ts')
        ? { file: full, mtimeMs: fs.statSync(full).mtimeMs }
        : newest;
    if (candidate.mtimeMs > newest.mtimeMs) newest = candidate;
  }
  return newest;
}

export default function requireFreshBuild() {
  const root = process.cwd();
  const built = path.join(root, 'dist', 'cli', 'bin.js');
  const source = newestSource(path.join(root, 'src'));
  let builtAt;
  try {
    builtAt = fs.statSync(built).mtimeMs;
  } catch {
    throw new Error(`${built} is missing: run \`npm run build\` (npm test does) before these tests`);
  }
  if (source.mtimeMs > builtAt) {
    throw new Error(
      `${built} is older than ${path.relative(root, source.file)}: run \`npm run build\` (npm test does) before these tests`,
    );
  }
}
