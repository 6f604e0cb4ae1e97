/**
 * Chat templates: the fixture transcript template renders exactly the old transcript (same ids),
 * real ChatML-style templates with bos/eos and system/tool messages, control tokens only where the
 * template puts them, and errors that name the template and the message index.
 */
import { mkdtempSync, readFileSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/foundation/errors.js';
import { ChatTemplate, type ChatTurn } from '../../src/inference/chat-template.js';
import { TextTokenizer } from '../../src/inference/tokenizer.js';
import { renderChat } from '../../src/runtime/serve/openai.js';

const DRAFT = join(import.meta.dirname, '../../artifacts/models/draft');

const CHATML =
  "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'tool' %}{{ '<|im_start|>tool\\n' + message['content'] + '<|im_end|>\\n' }}{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** The draft's tokenizer with ChatML specials added and a tokenizer_config carrying `template`. */
function chatmlDir(template: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgectl-chat-'));
  cpSync(DRAFT, dir, { recursive: true });
  const tok = JSON.parse(readFileSync(join(DRAFT, 'tokenizer.json'), 'utf8')) as {
    added_tokens: Record<string, unknown>[];
  };
  ['<|im_start|>', '<|im_end|>'].forEach((content, i) =>
    tok.added_tokens.push({
      id: 1000 + i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    }),
  );
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tok));
  const cfg = JSON.parse(readFileSync(join(DRAFT, 'tokenizer_config.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ ...cfg, chat_template: template }));
  return dir;
}

const chat: ChatTurn[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'my order 1234 has not arrived' },
  { role: 'assistant', content: 'Sorry to hear that.', name: 'Agent' },
  { role: 'user', content: 'any news?' },
];

describe('chat templates', () => {
  it('renders the fixture transcript exactly as before, with the same token ids', () => {
    const tokenizer = TextTokenizer.load(DRAFT);
    const t = ChatTemplate.load(DRAFT, tokenizer);
    expect(t.builtIn).toBe(false);
    for (const msgs of [chat, chat.slice(1, 2), [{ role: 'user', content: 'a\nb', name: 'Ana' }]]) {
      const old = renderChat(msgs as Parameters<typeof renderChat>[0]);
      const { text, ids } = t.encode(msgs);
      expect(text).toBe(old);
      expect(ids).toEqual(tokenizer.encode(old));
    }
  });

  it('uses a ChatML template with bos, system and tool messages; only its specials are control tokens', () => {
    const dir = chatmlDir(CHATML);
    const tokenizer = TextTokenizer.load(dir);
    const t = ChatTemplate.load(dir, tokenizer);
    const msgs: ChatTurn[] = [
      { role: 'system', content: 'sys' },
      { role: 'user', content: 'say <|im_end|> and <|endoftext|>' },
      { role: 'tool', content: '42' },
    ];
    const { text, ids } = t.encode(msgs);
    expect(text).toBe(
      '<|endoftext|><|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nsay <|im_end|> and <|endoftext|><|im_end|>\n<|im_start|>tool\n42<|im_end|>\n<|im_start|>assistant\n',
    );
    const start = tokenizer.tokenId('<|im_start|>') as number;
    const end = tokenizer.tokenId('<|im_end|>') as number;
    const eos = tokenizer.tokenId('<|endoftext|>') as number;
    // bos + 4 starts + 3 ends from the template; the user's spelled tokens are text.
    expect(ids.filter((id) => id === start)).toHaveLength(4);
    expect(ids.filter((id) => id === end)).toHaveLength(3);
    expect(ids.filter((id) => id === eos)).toHaveLength(1);
    expect(tokenizer.decode(ids, { skipSpecialTokens: false })).toBe(text);
  });

  it('picks "default" from a list of named templates and refuses a malformed list', () => {
    const dir = chatmlDir([
      { name: 'tool_use', template: 'TOOLS' },
      { name: 'default', template: CHATML },
    ]);
    expect(ChatTemplate.load(dir).render([{ role: 'user', content: 'hi' }])).toContain(
      '<|im_start|>user\nhi',
    );
    expect(() => ChatTemplate.load(chatmlDir([{ template: 'x' }]))).toThrow(
      /chat_template: expected a string or a list of \{ name, template \}/,
    );
  });

  it('names the template and the message index when rendering fails', () => {
    const strict =
      "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{{ message['content'] }}{% endfor %}";
    const t = ChatTemplate.load(chatmlDir(strict));
    let err: unknown;
    try {
      t.render([
        { role: 'user', content: 'a' },
        { role: 'assistant', content: 'b' },
        { role: 'assistant', content: 'c' },
      ]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(
      /^messages\[2\]: .*tokenizer_config\.json chat_template cannot render the chat \(.*roles must alternate/,
    );
    expect(() => ChatTemplate.load(chatmlDir('{% for %}')).render([{ role: 'user', content: 'a' }])).toThrow(
      /chat_template: cannot parse the template/,
    );
  });
});
