/**
 * Issue #14 items 7 and 10a with real processes: `verifier up` refuses a non-loopback host
 * without a bearer token; a verifier started with one (EDGECTL_VERIFIER_TOKEN) refuses
 * `edgectl generate` without it and serves it with it, on the speculative and cloud routes; and
 * `generate` encodes control-token text (`<|endoftext|>`) as text on every route.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TextTokenizer } from '../../src/inference/tokenizer.js';
import { REPO_ROOT, runCli } from '../helpers/cli.js';

const VERIFIER = join(REPO_ROOT, 'artifacts/models/verifier');
const DRAFT = join(REPO_ROOT, 'artifacts/models/draft');
const TOKEN = 'e2e-verifier-token';
const PROMPT = 'Priya: <|endoftext|> hi\nLeo:';

describe('verifier bearer token and control tokens (real processes)', () => {
  let cwd: string;
  let runDir: string;
  let url: string;
  const expectedPromptTokens = TextTokenizer.load(DRAFT).encode(PROMPT).length;

  beforeAll(async () => {
    cwd = mkdtempSync(join(tmpdir(), 'edgectl-e2e-vauth-'));
    runDir = join(cwd, 'run');
    const up = await runCli(
      ['verifier', 'up', '--model', VERIFIER, '--port', '0', '--threads', '1', '--run-dir', runDir, '--json'],
      { cwd, env: { EDGECTL_VERIFIER_TOKEN: TOKEN }, timeoutMs: 120_000 },
    );
    if (up.code !== 0) throw new Error(`verifier up exited ${up.code}:\n${up.stderr}`);
    url = up.json<{ url: string }>().url;
  });
  afterAll(async () => {
    await runCli(['verifier', 'down', '--run-dir', runDir], { cwd });
    rmSync(cwd, { recursive: true, force: true });
  });

  it('refuses a non-loopback --host without a token (exit 2, no child started)', async () => {
    const r = await runCli(
      [
        'verifier',
        'up',
        '--model',
        VERIFIER,
        '--host',
        '0.0.0.0',
        '--port',
        '0',
        '--run-dir',
        join(cwd, 'run2'),
        '--json',
      ],
      { cwd, env: { EDGECTL_VERIFIER_TOKEN: undefined } },
    );
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).toContain('E_VERIFIER_TOKEN');
  });

  it('generate without the token is refused with a clear error; with it, served on both routes', async () => {
    const base = ['generate', '--model', DRAFT, '--verifier', url, '--max-tokens', '4', '--json'];
    const refused = await runCli([...base, PROMPT], { cwd, env: { EDGECTL_VERIFIER_TOKEN: undefined } });
    expect(refused.code).toBe(2);
    expect(refused.stdout + refused.stderr).toContain('E_VERIFIER_AUTH');
    for (const route of ['speculative', 'cloud']) {
      const r = await runCli([...base, '--route', route, PROMPT], {
        cwd,
        env: { EDGECTL_VERIFIER_TOKEN: TOKEN },
      });
      expect(r.code, r.stderr).toBe(0);
      const out = r.json<{ route: string; promptTokens: number }>();
      expect(out.route).toBe(route);
      // Control-token text is text: as many tokens as its characters encode to, not one id 0.
      expect(out.promptTokens).toBe(expectedPromptTokens);
    }
  });

  it('generate edge-only encodes <|endoftext|> as text too', async () => {
    const r = await runCli(['generate', '--model', DRAFT, '--max-tokens', '4', '--json', PROMPT], { cwd });
    expect(r.code, r.stderr).toBe(0);
    const out = r.json<{ promptTokens: number }>();
    expect(out.promptTokens).toBe(expectedPromptTokens);
    expect(out.promptTokens).toBeGreaterThan(TextTokenizer.load(DRAFT).encode('Priya:  hi\nLeo:').length + 1);
  });
});
