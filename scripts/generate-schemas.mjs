// Writes schemas/*.json from the compiled sources: `npm run schemas` (it
// builds first). test/unit/config/schema_files.test.ts fails when the
// committed files differ from what this would write.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import prettier from 'prettier';
import { schemaDocuments } from '../dist/config/schema_files.js';
import { resourceSchemas } from '../dist/resources/registry.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const outputDir = path.join(root, 'schemas');

await mkdir(outputDir, { recursive: true });
for (const { file, schema } of schemaDocuments(resourceSchemas())) {
  const target = path.join(outputDir, file);
  // Formatted as `npm run lint` (prettier --check) expects.
  const options = (await prettier.resolveConfig(target)) ?? {};
  const text = await prettier.format(JSON.stringify(schema), { ...options, filepath: target });
  await writeFile(target, text);
  process.stdout.write(`wrote ${path.relative(root, target)}\n`);
}
