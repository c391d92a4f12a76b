/**
 * schema/config.schema.json: generated from the zod schema the proxy validates with, shipped in
 * the package, named by the example configs' yaml-language-server line, and it accepts what the
 * proxy accepts and refuses typos (top-level keys and shipped hooks' options).
 *
 * Real implementation: the python `jsonschema` package (Debian python3-jsonschema) validates,
 * an implementation of JSON Schema this team did not write. Skipped, visibly, without it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { bothCases, configZodSchema, generate, SCHEMA_FILE } from '../../scripts/gen-config-schema.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (p: string) => readFileSync(path.join(ROOT, p), 'utf8');

const VALIDATE = String.raw`
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
v = cls(schema)
json.dump([sorted("/".join(str(p) for p in e.absolute_path) + ": " + e.message for e in v.iter_errors(doc)) for doc in json.load(sys.stdin)], sys.stdout)
`;

function findJsonschemaPython(): string | undefined {
  for (const exe of ['/usr/bin/python3', 'python3']) if (spawnSync(exe, ['-c', 'import jsonschema']).status === 0) return exe;
  return undefined;
}
const python = findJsonschemaPython();

/** Each document's validation errors (empty: valid). */
function validate(docs: unknown[]): string[][] {
  const r = spawnSync(python!, ['-c', VALIDATE, SCHEMA_FILE], { input: JSON.stringify(docs), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as string[][];
}

test('schema/config.schema.json is what the generator writes from src/config.ts and the shipped hooks', { skip: configZodSchema() ? false : 'src/config.ts does not export configSchema yet (`export { schema as configSchema }`)' }, async () => {
  assert.equal(readFileSync(SCHEMA_FILE, 'utf8'), await generate(), 'stale: run `npm run gen:schema`');
});

test('the schema is shipped and the example configs point their editors at it', () => {
  const pkg = JSON.parse(read('package.json')) as { files: string[]; scripts: Record<string, string> };
  assert.ok(pkg.files.includes('schema'));
  assert.match(pkg.scripts['gen:schema'] ?? '', /gen-config-schema/);
  for (const file of ['deploy/proxy.example.yaml', 'deploy/compose/proxy.yaml']) {
    const m = /^# yaml-language-server: \$schema=(\S+)$/m.exec(read(file));
    assert.ok(m, `${file} names the schema`);
    assert.equal(path.resolve(ROOT, path.dirname(file), m[1]!), SCHEMA_FILE, `${file}: the $schema path leads to the schema`);
  }
  const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as { properties: Record<string, { items?: { allOf?: unknown[] } }>; additionalProperties: boolean };
  assert.equal(schema.additionalProperties, false);
  assert.ok((schema.properties.hooks!.items!.allOf ?? []).length >= 6, 'the shipped hooks contribute their option schemas');
});

test('case-insensitive size patterns stay case-insensitive in the schema', () => {
  const re = new RegExp(bothCases(String.raw`^\s*\d+(\.\d+)?\s*(k|kb|kib|m|mb|mib|g|gb|gib)?\s*$`));
  for (const ok of ['64MiB', '10GiB', '512k', '16 mib', '1000']) assert.ok(re.test(ok), ok);
  for (const bad of ['64 MiBs', 'x', '1.2.3']) assert.ok(!re.test(bad), bad);
  assert.equal(bothCases(String.raw`[^a\d]x`), String.raw`[^a\dA\d][xX]`);
});

test('JSON Schema validation (python jsonschema): the example configs pass, typos and wrong types fail where the proxy would', { skip: python || process.env.CI ? false : 'python jsonschema is not installed (apt-get install python3-jsonschema; .ci/run does)' }, () => {
  assert.ok(python, 'python jsonschema is not installed (Debian package python3-jsonschema)');
  const example = parseYaml(read('deploy/proxy.example.yaml')) as Record<string, any>;
  const compose = parseYaml(read('deploy/compose/proxy.yaml')) as Record<string, unknown>;
  const variant = (edit: (c: Record<string, any>) => void) => {
    const c = structuredClone(example);
    edit(c);
    return c;
  };
  const filterIndex = (example.hooks as { module: string }[]).findIndex((h) => h.module.endsWith('/message-filter'));
  const [ok1, ok2, topTypo, wrongType, badEnum, hookTypo, missingBackend] = validate([
    example,
    compose,
    variant((c) => (c.limts = { maxPeers: 10 })),
    variant((c) => (c.limits.maxPeers = 'many')),
    variant((c) => (c.checksum = 'sometimes')),
    variant((c) => (c.hooks[filterIndex].options.inbound.denny = ['mempool'])),
    variant((c) => delete c.backend),
  ]);
  assert.deepEqual(ok1, []);
  assert.deepEqual(ok2, []);
  assert.match(topTypo!.join('\n'), /'limts' was unexpected/);
  assert.match(wrongType!.join('\n'), /^limits\/maxPeers: /m);
  assert.match(badEnum!.join('\n'), /^checksum: 'sometimes' is not one of/m);
  assert.match(hookTypo!.join('\n'), new RegExp(`^hooks/${filterIndex}/options/inbound: .*'denny' was unexpected`, 'm'));
  assert.match(missingBackend!.join('\n'), /'backend' is a required property/);
});

test("the paywall (a shipped hook in a directory, hooks/paywall/index.js) has its options in the schema: an editor flags a typo there", { skip: python || process.env.CI ? false : 'python jsonschema is not installed (apt-get install python3-jsonschema; .ci/run does)' }, () => {
  assert.ok(python, 'python jsonschema is not installed (Debian package python3-jsonschema)');
  const example = parseYaml(read('deploy/proxy.example.yaml')) as { hooks: { module: string; options: Record<string, unknown> }[] };
  const paywall = example.hooks.findIndex((h) => h.module === 'bitcoin-hook-proxy/hooks/paywall');
  assert.ok(paywall >= 0, 'the example config lists the paywall');
  const typo = structuredClone(example);
  typo.hooks[paywall]!.options.pases = typo.hooks[paywall]!.options.passes;
  const wrongType = structuredClone(example);
  (wrongType.hooks[paywall]!.options.backend as Record<string, unknown>).kind = 'lightning';
  const [ok, typoErrors, kindErrors] = validate([example, typo, wrongType]);
  assert.deepEqual(ok, []);
  assert.match(typoErrors!.join('\n'), new RegExp(`^hooks/${paywall}/options: .*'pases' was unexpected`, 'm'));
  assert.ok(kindErrors!.some((e) => e.startsWith(`hooks/${paywall}/options`)), kindErrors!.join('\n'));
});
