// Types of fresh_build.mjs for the TypeScript tests that run dist/.
/** Throws unless dist/cli/bin.js exists and is newer than every .ts file under src/. */
export default function requireFreshBuild(): void;
