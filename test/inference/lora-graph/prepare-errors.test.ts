/**
 * Bad input to `model prepare` and to adapters served on a prepared export: each is refused with a
 * typed error (exit 2) that names the file or flag, what was found and the fix, before anything is
 * written (prepare) or fed (adapters).
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../../src/foundation/errors.js';
import { prepareLoraModel, type PrepareOptions } from '../../../src/artifact/model-prepare/prepare.js';
import { loadLoraAdapter } from '../../../src/inference/lora.js';
import type { LoraSlots } from '../../../src/inference/lora-slots.js';
import { LmSession } from '../../../src/inference/model-session.js';
import { copyToTemp, DRAFT_DIR, removeTempDirs } from '../helpers.js';
import { FAMILIES_DIR, writePeftAdapter } from './helpers.js';

const SMOLLM2 = join(FAMILIES_DIR, 'smollm2');
const tmp = mkdtempSync(join(tmpdir(), 'edgectl-prepare-bad-'));
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  removeTempDirs();
});

function refused(fn: () => unknown): UserError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    const e = err as UserError;
    expect(e.exitCode).toBe(2);
    expect(e.suggestion).toBeTruthy();
    return e;
  }
  throw new Error('expected a UserError');
}

let serial = 0;
function prepare(patch: Partial<PrepareOptions> = {}): void {
  const out = join(tmp, `out-${serial++}`);
  prepareLoraModel({ dir: SMOLLM2, out, targets: ['q_proj', 'v_proj'], rankMax: 4, ...patch });
}

describe('model prepare refuses bad input before writing anything', () => {
  it('an unknown target module, naming it and the projections the export has', () => {
    const out = join(tmp, 'unknown');
    const e = refused(() => prepare({ out, targets: ['q_proj', 'qkv_proj'] }));
    expect(e.message).toContain('"qkv_proj"');
    expect(e.message).toContain('q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj');
    expect(e.details).toMatchObject({ module: 'qkv_proj' });
    expect(existsSync(out)).toBe(false);
  });

  it('a graph that already takes LoRA inputs', () => {
    expect(refused(() => prepare({ dir: DRAFT_DIR })).message).toMatch(/already takes lora\.\* inputs/);
  });

  it('a rank limit out of range, an empty target list, a non-empty output directory', () => {
    expect(refused(() => prepare({ rankMax: 0 })).message).toMatch(/^--rank-max: 0/);
    expect(refused(() => prepare({ targets: [' ', ''] })).message).toMatch(/^--lora-targets/);
    const out = join(tmp, 'busy');
    mkdirSync(out);
    writeFileSync(join(out, 'keep.txt'), 'x');
    expect(refused(() => prepare({ out })).message).toMatch(/not empty/);
  });

  it('a truncated graph file, naming it', () => {
    const dir = copyToTemp(SMOLLM2, 'edgectl-prepare-trunc-');
    writeFileSync(join(dir, 'onnx/model_q4.onnx'), Buffer.from([0x0a, 0xff, 0xff, 0x01]));
    expect(refused(() => prepare({ dir })).message).toMatch(/model_q4\.onnx: not an ONNX model/);
  });
});

describe('adapters on a prepared export', () => {
  let lora: LoraSlots;
  const q: [number, number] = [64, 64];
  const kv: [number, number] = [64, 32];

  beforeAll(async () => {
    const out = join(tmp, 'prepared');
    prepareLoraModel({ dir: SMOLLM2, out, targets: ['q_proj', 'v_proj'], rankMax: 4 });
    const session = await LmSession.load(out);
    if (!session.inputs.lora) throw new Error('no LoRA slots');
    lora = session.inputs.lora;
  });

  it('fits: rank up to --rank-max on the prepared modules', () => {
    const dir = join(tmp, 'fits');
    writePeftAdapter(dir, { layers: 2, modules: { q_proj: q, v_proj: kv }, r: 4, alpha: 4 });
    expect(loadLoraAdapter(dir, lora).rank).toBe(4);
  });

  it('a rank above --rank-max', () => {
    const dir = join(tmp, 'rank');
    writePeftAdapter(dir, { layers: 2, modules: { q_proj: q }, r: 8, alpha: 16 });
    expect(refused(() => loadLoraAdapter(dir, lora)).message).toMatch(
      /rank 8 .* exceeds the model's max_rank 4/,
    );
  });

  it('a target module the prepared model has no inputs for', () => {
    const dir = join(tmp, 'module');
    writePeftAdapter(dir, { layers: 2, modules: { q_proj: q, k_proj: kv }, r: 2, alpha: 4 });
    const e = refused(() => loadLoraAdapter(dir, lora));
    expect(e.message).toMatch(
      /targets k_proj in layer 0, but the model has LoRA inputs only for q_proj, v_proj/,
    );
  });

  it('an adapter on the export before prepare says to prepare it', async () => {
    const dir = join(tmp, 'unprepared');
    writePeftAdapter(dir, { layers: 2, modules: { q_proj: q }, r: 2, alpha: 4 });
    const session = await LmSession.load(SMOLLM2);
    const e = refused(() => loadLoraAdapter(dir, session.inputs.lora));
    expect(e.suggestion).toContain('edgectl model prepare');
  });
});
