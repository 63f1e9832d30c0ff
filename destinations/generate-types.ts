/**
 * Generates the `generated-types.ts` of the destination (its Settings) and of each action (its Payload) from
 * the field definitions, like segmentio/action-destinations does: `npm run generate:types` writes them, and
 * `renderGeneratedTypes()` is what the drift test compares the committed files against.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fieldsToJsonSchema, type DestinationDefinition } from '@segment/actions-core';
import { compile } from 'json-schema-to-typescript';
import * as prettier from 'prettier';

const BANNER = '// Generated file. DO NOT MODIFY IT BY HAND.\n';

export interface GeneratedFile {
  file: string;
  content: string;
}

async function toTs(
  fields: Parameters<typeof fieldsToJsonSchema>[0],
  name: string,
  prettierFile: string,
): Promise<string> {
  const schema = fieldsToJsonSchema(fields);
  // Titles would become one named type alias per field; the reference destinations inline them instead.
  for (const prop of Object.values(schema.properties ?? {})) delete prop.title;
  const ts = await compile(schema, name, { bannerComment: '', additionalProperties: true, format: false });
  const options = (await prettier.resolveConfig(prettierFile)) ?? {};
  return prettier.format(BANNER + '\n' + ts, { ...options, parser: 'typescript' });
}

/** The content every generated-types.ts of `dir` should have for `destination`. */
export async function renderGeneratedTypes(
  destination: DestinationDefinition<unknown>,
  dir: string,
): Promise<GeneratedFile[]> {
  const out: GeneratedFile[] = [];
  const settingsFile = path.join(dir, 'generated-types.ts');
  out.push({
    file: settingsFile,
    content: await toTs(destination.authentication?.fields, 'Settings', settingsFile),
  });
  for (const [slug, action] of Object.entries(destination.actions)) {
    const file = path.join(dir, slug, 'generated-types.ts');
    out.push({ file, content: await toTs(action.fields, 'Payload', file) });
  }
  return out;
}

/** Writes the files; with `--check`, writes nothing and exits 1 listing the files that drifted. */
async function main(argv: string[]): Promise<void> {
  const check = argv.includes('--check');
  const dir = path.join(__dirname, 'cdp-lifecycle');
  // Loaded lazily so that the generator runs even while the generated files are missing or stale.
  const destination = (require('./cdp-lifecycle') as { default: DestinationDefinition<unknown> }).default;
  const stale: string[] = [];
  for (const f of await renderGeneratedTypes(destination, dir)) {
    const before = fs.existsSync(f.file) ? fs.readFileSync(f.file, 'utf8') : '';
    if (before === f.content) continue;
    const rel = path.relative(process.cwd(), f.file);
    stale.push(rel);
    if (!check) {
      fs.writeFileSync(f.file, f.content);
      console.log(`wrote ${rel}`);
    }
  }
  if (check && stale.length > 0) {
    console.error(`generated types are out of date: ${stale.join(', ')}; run \`npm run generate:types\``);
    process.exitCode = 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
