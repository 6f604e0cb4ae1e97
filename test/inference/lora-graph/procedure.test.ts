/**
 * docs/operations.md "LoRA on a downloaded export", run as written through the real CLI in a fresh
 * `edgectl init` project on a directory registry: the SmolLM2-shaped family fixture stands in for
 * the download and a generated PEFT adapter for the trained one. Every command must succeed; the
 * prepared version must lint, publish deduplicated against the published original (figures
 * printed), carry an adapter over it, and generate with that adapter.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { PublishResult } from '../../../src/artifact/publish.js';
import { REPO_ROOT, runCli } from '../../helpers/cli.js';
import { FAMILIES_DIR, writePeftAdapter } from './helpers.js';

const tmp = mkdtempSync(join(tmpdir(), 'edgectl-lora-procedure-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The first bash block of the docs section, one command per line (comments dropped). */
function procedure(): string[] {
  const doc = readFileSync(join(REPO_ROOT, 'docs/operations.md'), 'utf8');
  const section = doc.split('\n## LoRA on a downloaded export\n')[1]?.split('\n## ')[0] ?? '';
  const block = /```bash\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
  return block.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
}

/** Splits a command line on spaces, keeping "double-quoted" words whole. */
function words(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? (m[2] as string));
}

describe('docs/operations.md: LoRA on a downloaded export', () => {
  it('runs as written: prepare, lint, publish deduplicated, adapter over it, generate', async () => {
    const project = join(tmp, 'fleet');
    const init = await runCli(['init', project, '--json'], { cwd: tmp });
    expect(init.code, init.stderr).toBe(0);
    for (const step of init.json<{ next: string[] }>().next.slice(0, 5)) {
      const r = await runCli(words(step).slice(1), { cwd: project });
      expect(r.code, `${step}: ${r.stderr}`).toBe(0);
    }
    const adapterSource = join(tmp, 'trained-adapter');
    writePeftAdapter(adapterSource, {
      layers: 2,
      modules: { q_proj: [64, 64], v_proj: [64, 32] },
      r: 8,
      alpha: 16,
    });
    const downloads: Record<string, string> = {
      '~/Downloads/SmolLM2-135M-Instruct': join(FAMILIES_DIR, 'smollm2'),
      '~/adapters/support-smollm2': adapterSource,
    };

    const lines = procedure();
    expect(lines.filter((l) => l.startsWith('edgectl ')).length).toBe(6);
    const published: Record<string, PublishResult> = {};
    let generated: { text: string } | undefined;
    for (const line of lines) {
      const w = words(line);
      if (w[0] === 'cp') {
        const from = downloads[w[2] as string];
        if (!from) throw new Error(`no stand-in for ${w[2]}`);
        cpSync(from, join(project, w[3] as string), { recursive: true });
        rmSync(join(project, w[3] as string, 'artifact.yaml'), { force: true }); // a download has none
      } else if (w[0] === 'printf') {
        const m = /^printf '(.*)' > (\S+)$/.exec(line);
        if (!m) throw new Error(`unexpected printf: ${line}`);
        writeFileSync(join(project, m[2] as string), (m[1] as string).replaceAll('\\n', '\n'));
      } else if (w[0] === 'edgectl') {
        const r = await runCli([...w.slice(1), '--json'], { cwd: project, timeoutMs: 120_000 });
        expect(r.code, `${line}: ${r.stdout}${r.stderr}`).toBe(0);
        if (w[1] === 'publish') published[w[3] as string] = r.json<PublishResult>();
        if (w[1] === 'generate') generated = r.json<{ text: string }>();
      } else throw new Error(`the procedure has a line this test cannot run: ${line}`);
    }

    const original = published['artifacts/models/smollm2'];
    const prepared = published['artifacts/models/smollm2-lora'];
    expect(original?.ref).toBe('model/smollm2@1.0.0');
    expect(prepared?.ref).toBe('model/smollm2@1.1.0');
    expect(published['artifacts/adapters/support-smollm2']?.ref).toBe('adapter/support-smollm2@1.0.0');
    if (!original || !prepared) throw new Error('not published');
    console.log(
      `prepared smollm2@1.1.0: ${prepared.bytesUploaded} of ${prepared.bytesTotal} bytes uploaded ` +
        `(${prepared.chunksUploaded} new chunks, ${prepared.chunksReused} reused of ${prepared.chunksTotal}); ` +
        `the original uploaded ${original.bytesUploaded}`,
    );
    expect(prepared.dedupSources).toContain('model/smollm2@1.0.0');
    expect(prepared.chunksReused).toBeGreaterThan(0);
    expect(prepared.bytesUploaded).toBeLessThan(prepared.bytesTotal * 0.6);
    expect(generated?.text.length).toBeGreaterThan(0);
  }, 300_000);

  it('an unknown target module exits 2 naming it and the modules the export has', async () => {
    const r = await runCli(
      [
        'model',
        'prepare',
        join(FAMILIES_DIR, 'qwen2'),
        '--lora-targets',
        'q_proj,qkv_proj',
        '--rank-max',
        '8',
        '--out',
        join(tmp, 'never'),
      ],
      { cwd: tmp },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /no projection "qkv_proj" in the graph; its layer projections are q_proj, k_proj, v_proj/,
    );
  });
});
