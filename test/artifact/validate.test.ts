import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ExitCode, UserError } from '../../src/foundation/errors.js';
import { readArtifactYaml } from '../../src/config/artifact-yaml.js';
import { listSourceFiles } from '../../src/artifact/source.js';
import { validateArtifact } from '../../src/artifact/validate/index.js';
import type { ArtifactKind } from '../../src/artifact/ref.js';
import { FsStore } from '../../src/registry/fs-store.js';
import { parsePolicy } from '../../src/policy/schema.js';
import { makeModelDir, makePolicyDir, tempDir } from './fixtures.js';

const stores: FsStore[] = [];
afterEach(async () => {
  await Promise.all(stores.splice(0).map((s) => s.close()));
});

async function validate(kind: ArtifactKind, dir: string) {
  const store = new FsStore(join(tempDir(), 'registry'));
  stores.push(store);
  return validateArtifact(kind, {
    dir,
    files: listSourceFiles(dir).files,
    yaml: readArtifactYaml(dir),
    store,
    trust: undefined,
  });
}

async function refused(p: Promise<unknown>, pattern: RegExp): Promise<UserError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  expect((err as UserError).exitCode).toBe(ExitCode.Usage);
  expect((err as Error).message).toMatch(pattern);
  return err as UserError;
}

describe('model validation (real ONNX Runtime session)', () => {
  it('accepts the Optimum decoder layout and records role and layers', async () => {
    const dir = makeModelDir(tempDir(), {
      layers: 3,
      loraModules: ['q_proj'],
      lora: { target_modules: ['q_proj'], max_rank: 8 },
    });
    const { meta } = await validate('model', dir);
    expect(meta).toMatchObject({ role: 'draft', numHiddenLayers: 3, loraInputs: 6, lora: { maxRank: 8 } });
  });

  it('refuses a model whose ONNX layers do not match config.json', async () => {
    const dir = makeModelDir(tempDir(), { layers: 2, configLayers: 3 });
    await refused(
      validate('model', dir),
      /model\.onnx: the graph does not match config\.json \(num_hidden_layers 3\): missing input past_key_values\.2\.key/,
    );
    const more = makeModelDir(tempDir(), { layers: 3, configLayers: 2 });
    await refused(validate('model', more), /graph has more layers than num_hidden_layers/);
  });

  it('refuses missing outputs, unexpected inputs, missing files and a missing or wrong role', async () => {
    await refused(
      validate('model', makeModelDir(tempDir(), { dropOutput: 'present.1.value' })),
      /missing output present\.1\.value/,
    );
    await refused(
      validate('model', makeModelDir(tempDir(), { extraInput: 'token_type_ids' })),
      /takes input token_type_ids, which the runtime does not feed/,
    );
    const noTok = makeModelDir(tempDir());
    writeFileSync(join(noTok, 'tokenizer.json'), '{"version": "1.0"}');
    await refused(validate('model', noTok), /tokenizer\.json: model: missing/);
    const noRole = makeModelDir(tempDir());
    writeFileSync(join(noRole, 'artifact.yaml'), 'kind: model\nname: draft\nversion: 1.0.0\n');
    await refused(validate('model', noRole), /artifact\.yaml: role: a model needs a role/);
    const declaredLora = makeModelDir(tempDir(), { lora: { target_modules: ['v_proj'], max_rank: 4 } });
    await refused(validate('model', declaredLora), /inputs \(LoRA\): missing lora\.0\.v_proj\.A/);
    const broken = makeModelDir(tempDir());
    writeFileSync(join(broken, 'model.onnx'), 'not a model');
    await refused(validate('model', broken), /model\.onnx: ONNX Runtime cannot load the model/);
  });
});

describe('policy validation', () => {
  it('accepts the sample policy in artifacts/policies/default', async () => {
    const { meta } = await validate('policy', join(import.meta.dirname, '../../artifacts/policies/default'));
    expect(meta).toMatchObject({ defaultRoute: 'speculative', blockRules: 2 });
  });

  it('reports invalid policy YAML as file:line: field (exit 2)', async () => {
    const yaml = [
      'version: 1',
      'routing:',
      '  default: speculative',
      '  rules:',
      '    - name: big',
      '      when: { promptTokens: { min: 10 } }',
      '      route: moon',
    ].join('\n');
    const dir = makePolicyDir(tempDir(), { yaml });
    const err = await refused(validate('policy', dir), /policy\.yaml:7: routing\.rules\.0\.route: /);
    expect(err.details).toMatchObject({ problems: [{ line: 7, field: 'routing.rules.0.route' }] });
  });

  it('checks regular expressions, unknown fields and detectors at publish', () => {
    const bad = (text: string, pattern: RegExp) => {
      expect(() => parsePolicy(text, 'p.yaml')).toThrow(pattern);
    };
    const base = 'version: 1\nrouting:\n  default: edge\n';
    bad(
      `${base}redaction:\n  patterns:\n    - name: x\n      regex: '(unclosed'\n`,
      /p\.yaml:7: redaction\.patterns\.0\.regex: invalid regular expression/,
    );
    bad(`${base}redaction:\n  detectors: [ssn]\n`, /p\.yaml:5: redaction\.detectors\.0: /);
    bad(
      `${base}block:\n  - name: b\n    message: no\n`,
      /p\.yaml:5: block\.0: a block rule needs patterns or keywords/,
    );
    bad(`${base}verifier:\n  fallback: retry\n`, /p\.yaml:5: verifier\.fallback: /);
    bad(
      `${base}circuitBreaker:\n  threshold: 3\n`,
      /p\.yaml:5: circuitBreaker\.threshold: unknown field "threshold"/,
    );
    bad('version: 1\nrouting:\n  default: edge\n  default: cloud\n', /p\.yaml:\d+: Map keys must be unique/);
  });
});
