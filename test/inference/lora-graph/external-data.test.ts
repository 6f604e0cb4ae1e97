/**
 * `model prepare` on an export whose weights are in external data (`onnx/model.onnx_data`), as every
 * real-size Hugging Face export is: the data file is carried over byte for byte (hard-linked), the
 * prepared graph runs the base model exactly, and publishing the prepared version after the
 * original uploads only the small graph and config: every chunk of the weights is reused. Prepared
 * from the published ref (`model prepare model/smollm2@1.0.0`), the result is the same bytes.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PublishResult } from '../../../src/artifact/publish.js';
import { prepareLoraModel } from '../../../src/artifact/model-prepare/prepare.js';
import { LmSession } from '../../../src/inference/model-session.js';
import { runCli } from '../../helpers/cli.js';
import { copyToTemp, removeTempDirs } from '../helpers.js';
import { FAMILIES_DIR, toExternalData } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'edgectl-prepare-ext-'));
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  removeTempDirs();
});

describe('model prepare on an export with external data', () => {
  const src = copyToTemp(join(FAMILIES_DIR, 'smollm2'), 'edgectl-ext-src-');
  for (const f of ['model_fp16.onnx', 'model_q4.onnx']) rmSync(join(src, 'onnx', f));
  writeFileSync(join(src, 'artifact.yaml'), 'kind: model\nname: smollm2\nversion: 1.0.0\nrole: draft\n');
  toExternalData(join(src, 'onnx/model.onnx'));
  const out = join(tmp, 'prepared');

  it('carries the weights over unchanged and computes exactly the original', async () => {
    expect(statSync(join(src, 'onnx/model.onnx')).size).toBeLessThan(64 * 1024);
    prepareLoraModel({ dir: src, out, targets: ['q_proj', 'v_proj'], rankMax: 8 });
    const data = (dir: string) => readFileSync(join(dir, 'onnx/model.onnx_data'));
    expect(data(out).equals(data(src))).toBe(true);
    const ids = [3, 14, 15, 92, 65];
    const a = (await (await LmSession.load(src)).forward(ids)).logits.last();
    const b = (await (await LmSession.load(out)).forward(ids)).logits.last();
    expect(Array.from(b)).toEqual(Array.from(a));
  });

  it('publishes after the original uploading only the graph and config', async () => {
    const project = join(tmp, 'fleet');
    const init = await runCli(['init', project, '--json'], { cwd: tmp });
    expect(init.code, init.stderr).toBe(0);
    for (const step of init.json<{ next: string[] }>().next.slice(0, 5)) {
      const r = await runCli(step.split(' ').slice(1), { cwd: project });
      expect(r.code, `${step}: ${r.stderr}`).toBe(0);
    }
    const publish = async (dir: string) => {
      const r = await runCli(['publish', 'artifact', dir, '--json'], { cwd: project, timeoutMs: 120_000 });
      expect(r.code, r.stdout + r.stderr).toBe(0);
      return r.json<PublishResult>();
    };
    const original = await publish(src);
    const prepared = await publish(out);
    expect(prepared.ref).toBe('model/smollm2@1.1.0');
    const weights = statSync(join(out, 'onnx/model.onnx_data')).size;
    const rest = prepared.bytesTotal - weights;
    console.log(
      `external data: original uploaded ${original.bytesUploaded} B; prepared ${prepared.bytesUploaded} of ` +
        `${prepared.bytesTotal} B (weights ${weights} B all reused: ${prepared.chunksReused} of ${prepared.chunksTotal} chunks)`,
    );
    expect(prepared.bytesUploaded).toBeLessThanOrEqual(rest);
    expect(prepared.bytesUploaded).toBeLessThan(prepared.bytesTotal / 10);

    // Prepared from the published ref instead of the directory: the same graph, name and role.
    const fromRef = join(tmp, 'from-ref');
    const r = await runCli(
      [
        'model',
        'prepare',
        'model/smollm2@1.0.0',
        '--lora-targets',
        'q_proj,v_proj',
        '--rank-max',
        '8',
        '--out',
        fromRef,
        '--version',
        '1.2.0',
        '--json',
      ],
      { cwd: project, env: { XDG_CACHE_HOME: join(tmp, 'cache') } },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const f of ['onnx/model.onnx', 'onnx/model.onnx_data', 'config.json'])
      expect(readFileSync(join(fromRef, f)).equals(readFileSync(join(out, f))), f).toBe(true);
    expect(readFileSync(join(fromRef, 'artifact.yaml'), 'utf8')).toMatch(
      /^name: smollm2\nversion: 1\.2\.0\nrole: draft$/m,
    );
  }, 300_000);
});
