/**
 * `edgectl generate --chat` and `--model-file` as a user runs them (the built CLI): the prompt goes
 * through the model's chat template, the named graph runs, and a graph that does not exist is
 * exit 2 naming what the directory has.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';

const QWEN2 = join(REPO_ROOT, 'test/fixtures/families/qwen2');
const DRAFT = join(REPO_ROOT, 'artifacts/models/draft');

describe('edgectl generate with chat templates and model files', () => {
  it('renders --chat with the model template and runs the --model-file variant', async () => {
    const r = await runCli(
      [
        'generate',
        '--model',
        QWEN2,
        '--model-file',
        'onnx/model_q4.onnx',
        '--chat',
        '--max-tokens',
        '4',
        '--json',
        'hi',
      ],
      { cwd: REPO_ROOT },
    );
    expect(r.code, r.stderr).toBe(0);
    // <|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n: 4 control tokens plus the text.
    expect(r.json<{ promptTokens: number; tokens: number }>()).toMatchObject({ tokens: 4 });
    expect(r.json<{ promptTokens: number }>().promptTokens).toBeGreaterThan(4);
  });

  it('gives the fixture draft the same prompt as its transcript and ends the turn at the newline', async () => {
    const chat = await runCli(
      ['generate', '--model', DRAFT, '--chat', '--json', 'my order has not arrived'],
      {
        cwd: REPO_ROOT,
      },
    );
    const plain = await runCli(
      [
        'generate',
        '--model',
        DRAFT,
        '--stop',
        '\n',
        '--json',
        '--',
        'User: my order has not arrived\nAssistant:',
      ],
      { cwd: REPO_ROOT },
    );
    expect(chat.code, chat.stderr).toBe(0);
    expect(plain.code, plain.stderr).toBe(0);
    const a = chat.json<{ text: string; promptTokens: number }>();
    const b = plain.json<{ text: string; promptTokens: number }>();
    expect(a.promptTokens).toBe(b.promptTokens);
    expect(a.text).toBe(b.text);
    expect(a.text).not.toContain('\n');
  });

  it('refuses a --model-file that does not exist (exit 2)', async () => {
    const r = await runCli(['generate', '--model', QWEN2, '--model-file', 'onnx/model_q4f16.onnx', 'hi'], {
      cwd: REPO_ROOT,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /--model-file onnx\/model_q4f16\.onnx does not exist \(it has onnx\/model\.onnx/,
    );
  });

  it('--repetition-penalty changes the edge output and refuses out-of-range values (exit 2)', async () => {
    const args = ['generate', '--model', DRAFT, '--max-tokens', '24', '--json'];
    const prompt = 'Customer: my order my order my order is late.\nAgent:';
    const text = async (extra: string[]) => {
      const r = await runCli([...args, ...extra, prompt], { cwd: REPO_ROOT });
      expect(r.code, r.stderr).toBe(0);
      return r.json<{ text: string }>().text;
    };
    expect(await text(['--repetition-penalty', '2'])).not.toBe(await text([]));
    for (const bad of ['0', 'x']) {
      const r = await runCli([...args, '--repetition-penalty', bad, 'hi'], { cwd: REPO_ROOT });
      expect(r.code).toBe(2);
      expect(r.stdout + r.stderr).toContain(
        `--repetition-penalty ${bad}: expected a number between 0.01 and 100`,
      );
    }
  });
});
