/**
 * Writes schema/config.schema.json, the JSON Schema of the proxy's YAML config, from the zod
 * schema the proxy validates with (zod 4's z.toJSONSchema, input side: what an operator writes,
 * before defaults and unit parsing). Each shipped hook that declares a zod options schema adds
 * an if/then rule keyed on its module name, so an editor also completes hook options.
 *
 *   npm run gen:schema            # regenerate after changing src/config.ts or a hook's options
 *
 * Needs `export { schema as configSchema }` in src/config.ts.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import * as config from '../src/config.js';

/** repository root, from dist/scripts/ (compiled) */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SCHEMA_FILE = path.join(ROOT, 'schema', 'config.schema.json');
export const SCHEMA_ID = 'https://github.com/bitcoin-hook-proxy/bitcoin-hook-proxy/schema/config.schema.json';

type JsonSchema = Record<string, unknown>;

/** The config's zod schema, or null while src/config.ts does not export it. */
export function configZodSchema(): z.ZodType | null {
  const s = (config as unknown as Record<string, unknown>).configSchema;
  return s instanceof z.ZodType ? s : null;
}

const toJson = (s: z.ZodType): JsonSchema =>
  z.toJSONSchema(s, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12', override: keepCaseInsensitive }) as JsonSchema;

/**
 * JSON Schema patterns have no flags, and zod writes a /re/i regex as plain "re": "64MiB" would
 * fail where the proxy accepts it. Rewrite such patterns so each letter matches both cases.
 */
function keepCaseInsensitive(ctx: { zodSchema: unknown; jsonSchema: JsonSchema }): void {
  const checks = (ctx.zodSchema as { _zod?: { def?: { checks?: { _zod: { def: { format?: string; pattern?: RegExp } } }[] } } })._zod?.def?.checks ?? [];
  const insensitive = checks.map((c) => c._zod.def.pattern).filter((re): re is RegExp => re instanceof RegExp && re.flags.includes('i'));
  if (!insensitive.length) return;
  const rewrite = (p: unknown) => (typeof p === 'string' && insensitive.some((re) => re.source === p) ? bothCases(p) : p);
  ctx.jsonSchema.pattern = rewrite(ctx.jsonSchema.pattern);
  for (const sub of (ctx.jsonSchema.allOf as JsonSchema[] | undefined) ?? []) sub.pattern = rewrite(sub.pattern);
}

/** "k|kb" -> "[kK]|[kK][bB]"; escapes (\s, \d) stay; a class [a-z] gets its other case added: [a-zA-Z]. */
export function bothCases(source: string): string {
  const swap = (t: string) => t.replace(/(\\.)|([a-zA-Z])/g, (m, esc: string | undefined) => (esc ? m : m === m.toLowerCase() ? m.toUpperCase() : m.toLowerCase()));
  let out = '';
  for (let i = 0; i < source.length; i++) {
    const ch = source[i]!;
    if (ch === '\\') {
      out += ch + (source[++i] ?? '');
    } else if (ch === '[') {
      let j = i + 1;
      while (j < source.length && source[j] !== ']') j += source[j] === '\\' ? 2 : 1;
      const neg = source[i + 1] === '^' ? '^' : '';
      const inner = source.slice(i + 1 + neg.length, j);
      out += `[${neg}${inner}${/[a-zA-Z]/.test(inner.replace(/\\./g, '')) ? swap(inner) : ''}]`;
      i = j;
    } else {
      out += /[a-zA-Z]/.test(ch) ? `[${ch.toLowerCase()}${ch.toUpperCase()}]` : ch;
    }
  }
  return out;
}

/** The shipped hooks' option schemas, by the module name a config uses for them. */
export async function shippedHookOptionSchemas(): Promise<Map<string, z.ZodType>> {
  const dir = fileURLToPath(new URL('../hooks/', import.meta.url));
  const out = new Map<string, z.ZodType>();
  // a hook is a file (hooks/rate-limit.js) or a directory with an index (hooks/paywall/index.js, exported as hooks/paywall)
  const modules = readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isFile() && e.name.endsWith('.js') ? [[e.name.slice(0, -3), e.name]] : e.isDirectory() && existsSync(path.join(dir, e.name, 'index.js')) ? [[e.name, path.join(e.name, 'index.js')]] : [],
  );
  for (const [name, file] of modules.sort(([a], [b]) => (a! < b! ? -1 : 1))) {
    const mod = (await import(pathToFileURL(path.join(dir, file!)).href)) as { default?: { options?: unknown } };
    const options = mod.default?.options;
    if (options instanceof z.ZodType) out.set(`bitcoin-hook-proxy/hooks/${name}`, options);
  }
  return out;
}

export function buildConfigJsonSchema(configSchema: z.ZodType, hookOptions: Map<string, z.ZodType>): JsonSchema {
  const root = toJson(configSchema);
  const { $schema, ...rest } = root;
  const hooks = (rest.properties as Record<string, JsonSchema> | undefined)?.hooks;
  const items = hooks?.items as JsonSchema | undefined;
  if (!items) throw new Error('the config schema has no hooks array: the generator needs updating');
  const rules: JsonSchema[] = [];
  for (const [module, schema] of hookOptions) {
    const { $schema: _drop, ...options } = toJson(schema);
    rules.push({ if: { properties: { module: { const: module } }, required: ['module'] }, then: { properties: { options } } });
  }
  if (rules.length) items.allOf = rules;
  return {
    $schema,
    $id: SCHEMA_ID,
    title: 'bitcoin-hook-proxy configuration',
    description: 'The YAML file given to `bitcoin-hook-proxy run|check --config FILE`. Generated from src/config.ts by scripts/gen-config-schema.ts; do not edit.',
    ...rest,
  };
}

export async function generate(): Promise<string> {
  const s = configZodSchema();
  if (!s) throw new Error('src/config.ts does not export configSchema (add `export { schema as configSchema }`)');
  return JSON.stringify(buildConfigJsonSchema(s, await shippedHookOptionSchemas()), null, 2) + '\n';
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = process.argv[2] ?? SCHEMA_FILE;
  generate().then(
    (text) => {
      writeFileSync(out, text);
      console.log(`wrote ${path.relative(process.cwd(), out) || out}`);
    },
    (err: Error) => {
      console.error(err.message);
      process.exit(1);
    },
  );
}
