import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readPromptsFile } from '../../src/bench/prompts.js';
import { percentile, ratio, summarize } from '../../src/bench/summary.js';

const dir = mkdtempSync(join(tmpdir(), 'edgectl-bench-prompts-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('prompt files', () => {
  it('reads one prompt per JSON line, skipping blank lines', () => {
    const f = join(dir, 'ok.jsonl');
    writeFileSync(f, '{"prompt": "a"}\n\n{"prompt": "b", "id": 2}\n');
    expect(readPromptsFile(f)).toEqual(['a', 'b']);
  });

  it('names the file and line of a bad entry (exit 2)', () => {
    const f = join(dir, 'bad.jsonl');
    writeFileSync(f, '{"prompt": "a"}\n{"prompt": ""}\n');
    expect(() => readPromptsFile(f)).toThrow(`${f}:2: prompt:`);
    writeFileSync(f, '{"prompt": "a"}\n{nope\n');
    expect(() => readPromptsFile(f)).toThrow(`${f}:2: invalid JSON`);
    try {
      readPromptsFile(join(dir, 'missing.jsonl'));
    } catch (err) {
      expect((err as { exitCode: number }).exitCode).toBe(2);
    }
  });
});

describe('summaries', () => {
  it('uses nearest-rank percentiles', () => {
    const v = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
    expect(percentile(v, 50)).toBe(5);
    expect(percentile(v, 95)).toBe(10);
    expect(percentile([], 50)).toBeNaN();
    expect(summarize([1, 2, 3])).toEqual({ p50: 2, p95: 3, mean: 2 });
    expect(ratio(1, 0)).toBeNull();
    expect(ratio(1, 3)).toBe(0.333);
  });
});
