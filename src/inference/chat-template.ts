/**
 * Chats rendered with the model's own Jinja `chat_template` (tokenizer_config.json, or the newer
 * `chat_template.jinja` file) through `@huggingface/jinja`, the implementation transformers.js uses,
 * with the variables transformers passes: `messages`, `add_generation_prompt`, `bos_token`,
 * `eos_token` (and `tools` when given). A list of named templates picks `default`. A model without
 * a template gets `TRANSCRIPT_TEMPLATE`, the `Speaker: text` transcript the fixture models are
 * trained on, so every chat goes through one path.
 *
 * Encoding keeps control tokens the template's: the chat is rendered once with each message's
 * content replaced by a placeholder, which shows where the template's own text is. Special-token
 * strings in that text become control tokens; message content is encoded with a copy of the
 * tokenizer that has no special added tokens, so user text spelling `<|im_start|>` stays text.
 * Pieces between control tokens are encoded whole (Hugging Face tokenizers split at added tokens
 * first too), so the ids equal a plain encode of the rendered text when no content spells a
 * special token. A template that rewrites content (beyond trimming it) cannot be tracked; such a
 * chat is refused only if its content spells a special token.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { UserError } from '../foundation/errors.js';
import { GENERATION_CONFIG_FILE } from './model-config.js';
import { TextTokenizer, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE } from './tokenizer.js';

export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';

/** The fixture models' transcript format: `<name or role>: <content>` lines, then `<assistant>:`. */
export const TRANSCRIPT_TEMPLATE = [
  "{%- set ns = namespace(assistant='Assistant') -%}",
  '{%- for message in messages -%}',
  "{%- if message['role'] == 'assistant' and message['name'] -%}{%- set ns.assistant = message['name'] -%}{%- endif -%}",
  '{%- endfor -%}',
  '{%- for message in messages -%}',
  "{%- if message['name'] -%}{{ message['name'] }}",
  "{%- elif message['role'] == 'user' -%}User",
  "{%- elif message['role'] == 'assistant' -%}Assistant",
  "{%- elif message['role'] == 'tool' -%}Tool",
  '{%- else -%}System{%- endif -%}',
  ": {{ message['content'] }}{{ '\\n' }}",
  '{%- endfor -%}',
  '{%- if add_generation_prompt -%}{{ ns.assistant }}:{%- endif -%}',
].join('\n');

export interface ChatTurn {
  role: string;
  content: string;
  name?: string | undefined;
  [key: string]: unknown;
}

export interface RenderOptions {
  addGenerationPrompt?: boolean;
  tools?: unknown[];
}

export interface EncodedChat {
  text: string;
  ids: number[];
}

interface Source {
  text: string;
  /** For messages: `<dir>/tokenizer_config.json chat_template` (and its name). */
  label: string;
}

function readJson(path: string): Record<string, unknown> {
  const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function tokenString(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string')
    return (v as { content: string }).content;
  return '';
}

/** The template source: chat_template.jinja, else tokenizer_config.json's (string or named list). */
function templateSource(dir: string, config: Record<string, unknown>): Source | undefined {
  const file = join(dir, CHAT_TEMPLATE_FILE);
  if (existsSync(file)) return { text: readFileSync(file, 'utf8'), label: file };
  const configFile = join(dir, TOKENIZER_CONFIG_FILE);
  const t = config.chat_template;
  if (t === undefined || t === null) return undefined;
  if (typeof t === 'string') return { text: t, label: `${configFile} chat_template` };
  const list = Array.isArray(t) ? (t as unknown[]) : [];
  const named = list.filter(
    (e): e is { name: string; template: string } =>
      typeof e === 'object' &&
      e !== null &&
      typeof (e as { name?: unknown }).name === 'string' &&
      typeof (e as { template?: unknown }).template === 'string',
  );
  if (named.length === 0 || named.length !== list.length) {
    throw new UserError(`${configFile}: chat_template: expected a string or a list of { name, template }`, {
      code: 'E_CHAT_TEMPLATE',
      suggestion: 'Write the template as saved by transformers (tokenizer.save_pretrained).',
    });
  }
  const pick = named.find((e) => e.name === 'default') ?? named[0];
  if (pick === undefined) return undefined;
  return { text: pick.template, label: `${configFile} chat_template "${pick.name}"` };
}

export class ChatTemplate {
  private compiled: Template | undefined;
  /** Special-token strings, longest first (so `<|im_start|>` wins over a prefix of it). */
  private readonly specials: string[];

  private constructor(
    readonly source: Source,
    readonly builtIn: boolean,
    private readonly bosToken: string,
    private readonly eosToken: string,
    private readonly tokenizer: TextTokenizer,
    private readonly plain: TextTokenizer,
    specials: string[],
  ) {
    this.specials = [...specials].sort((a, b) => b.length - a.length);
  }

  /** The model directory's template (or the transcript one) with its tokenizer. */
  static load(dir: string, tokenizer: TextTokenizer = TextTokenizer.load(dir)): ChatTemplate {
    const configFile = join(dir, TOKENIZER_CONFIG_FILE);
    const config = existsSync(configFile) ? readJson(configFile) : {};
    const json = readJson(join(dir, TOKENIZER_FILE));
    const added = Array.isArray(json.added_tokens) ? (json.added_tokens as Record<string, unknown>[]) : [];
    const specials = added.filter((t) => t.special === true).map((t) => String(t.content));
    // The content tokenizer: the same model without special added tokens, so they encode as text.
    const plain = TextTokenizer.fromJson(
      { ...json, added_tokens: added.filter((t) => t.special !== true) },
      { ...config, chat_template: undefined },
    );
    const source = templateSource(dir, config);
    return new ChatTemplate(
      source ?? { text: TRANSCRIPT_TEMPLATE, label: 'the built-in transcript chat template' },
      source === undefined,
      tokenString(config.bos_token),
      tokenString(config.eos_token),
      tokenizer,
      plain,
      specials,
    );
  }

  /** The prompt text for `messages`; a failure names the template and the first failing message. */
  render(messages: readonly ChatTurn[], opts: RenderOptions = {}): string {
    try {
      return this.renderRaw(messages, opts);
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw this.renderError(messages, opts, err as Error);
    }
  }

  /** Renders and encodes; only the template's own special-token strings become control tokens. */
  encode(messages: readonly ChatTurn[], opts: RenderOptions = {}): EncodedChat {
    const text = this.render(messages, opts);
    const marks = messages.map((_, i) => `\uE000${i}\uE001`);
    const masked = this.renderRaw(
      messages.map((m, i) => ({ ...m, content: marks[i] as string })),
      opts,
    );
    for (const trim of [false, true]) {
      const pieces = this.pieces(masked, messages, marks, trim);
      if (pieces.map((p) => p.text).join('') === text) return { text, ids: this.encodePieces(pieces) };
    }
    const spelled = messages.findIndex((m) => this.specials.some((s) => m.content.includes(s)));
    if (spelled >= 0) {
      throw new UserError(
        `messages[${spelled}]: contains a special token, and ${this.source.label} rewrites message content, so it cannot be kept as text`,
        { code: 'E_CHAT_TEMPLATE', details: { template: this.source.label, index: spelled } },
      );
    }
    return { text, ids: this.encodePieces(this.splitSpecials(text)) };
  }

  private renderRaw(messages: readonly ChatTurn[], opts: RenderOptions): string {
    this.compiled ??= this.compile();
    return this.compiled.render({
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? true,
      bos_token: this.bosToken,
      eos_token: this.eosToken,
      ...(opts.tools === undefined ? {} : { tools: opts.tools }),
    });
  }

  private compile(): Template {
    try {
      return new Template(this.source.text);
    } catch (err) {
      throw new UserError(`${this.source.label}: cannot parse the template (${(err as Error).message})`, {
        code: 'E_CHAT_TEMPLATE',
        suggestion: 'Fix the Jinja syntax of the chat template.',
        details: { template: this.source.label },
      });
    }
  }

  /** Finds the first message whose addition makes rendering fail (templates raise on bad turns). */
  private renderError(messages: readonly ChatTurn[], opts: RenderOptions, err: Error): UserError {
    let index = messages.length - 1;
    for (let n = 1; n <= messages.length; n++) {
      try {
        this.renderRaw(messages.slice(0, n), opts);
      } catch {
        index = n - 1;
        break;
      }
    }
    return new UserError(`messages[${index}]: ${this.source.label} cannot render the chat (${err.message})`, {
      code: 'E_CHAT_TEMPLATE',
      suggestion: 'Check the roles and order of the messages against what the model template accepts.',
      details: { template: this.source.label, index },
    });
  }

  /** Template text (specials split out) and message content, in rendered order. */
  private pieces(masked: string, messages: readonly ChatTurn[], marks: string[], trim: boolean): Piece[] {
    const out: Piece[] = [];
    const re = /\uE000(\d+)\uE001/g;
    let last = 0;
    for (const m of masked.matchAll(re)) {
      out.push(...this.splitSpecials(masked.slice(last, m.index)));
      const content = messages[Number(m[1])]?.content ?? '';
      out.push({ text: trim ? content.trim() : content, control: undefined });
      last = m.index + m[0].length;
    }
    out.push(...this.splitSpecials(masked.slice(last)));
    return out;
  }

  private splitSpecials(text: string): Piece[] {
    const out: Piece[] = [];
    let plain = '';
    for (let i = 0; i < text.length;) {
      const hit = this.specials.find((s) => text.startsWith(s, i));
      const id = hit === undefined ? undefined : this.tokenizer.tokenId(hit);
      if (hit !== undefined && id !== undefined) {
        if (plain) out.push({ text: plain, control: undefined });
        out.push({ text: hit, control: id });
        plain = '';
        i += hit.length;
      } else {
        plain += text[i];
        i++;
      }
    }
    if (plain) out.push({ text: plain, control: undefined });
    return out;
  }

  /** Control tokens as ids; runs of text between them encoded whole, specials as text. */
  private encodePieces(pieces: readonly Piece[]): number[] {
    const ids: number[] = [];
    let run = '';
    for (const p of pieces) {
      if (p.control === undefined) {
        run += p.text;
        continue;
      }
      if (run) ids.push(...this.plain.encode(run, { addSpecialTokens: false }));
      run = '';
      ids.push(p.control);
    }
    if (run) ids.push(...this.plain.encode(run, { addSpecialTokens: false }));
    return ids;
  }
}

interface Piece {
  text: string;
  /** The id of a template-inserted special token. */
  control: number | undefined;
}

export interface ChatPrompt {
  template: ChatTemplate;
  /** Text stops that end an assistant turn (besides EOS). */
  stops: string[];
}

/** The chat setup of a model directory (the template compiles on first use). */
export function loadChatPrompt(dir: string, tokenizer: TextTokenizer): ChatPrompt {
  const template = ChatTemplate.load(dir, tokenizer);
  // generation_config.json `stop_strings` (Hugging Face's field) end a turn besides EOS; the
  // built-in transcript template's turns end at a newline.
  const file = join(dir, GENERATION_CONFIG_FILE);
  let stops: string[] = template.builtIn ? ['\n'] : [];
  if (existsSync(file)) {
    const gen = JSON.parse(readFileSync(file, 'utf8')) as { stop_strings?: unknown };
    const s = gen.stop_strings;
    if (typeof s === 'string') stops = [s];
    else if (Array.isArray(s)) stops = s.filter((x): x is string => typeof x === 'string' && x !== '');
  }
  return { template, stops };
}
