/**
 * `/v1/chat/completions` prompts through the model's own chat template (src/inference/chat-template.ts):
 * the messages are rendered with `add_generation_prompt`, a template that cannot render them is a
 * 400 naming the template and the message index, and the prompt ids keep control tokens where the
 * template put them. PII redaction runs on each message's content (one redaction map for the chat)
 * before the template renders it, so placeholders never split a template's markup. A turn ends at
 * the model's EOS ids; generation_config.json `stop_strings` (the Hugging Face field) add text
 * stops, which is how the fixture transcript models end a turn at the newline. A model without a
 * template uses the built-in transcript template, whose turns end at a newline too.
 */
import { UserError } from '../../foundation/errors.js';
import type { ChatPrompt, ChatTurn } from '../../inference/chat-template.js';
import { RedactionMap, totalRedactions, type Redactor } from '../../policy/redact.js';
import { badRequest, type HttpError } from '../../http/http.js';
import type { ChatMessage } from '../serve/openai.js';
import type { ToolFunction } from './tool-calls.js';
import { redactToolCalls, toolTurns } from './tool-prompt.js';

function turns(messages: readonly ChatMessage[]): ChatTurn[] {
  return messages.map((m) => {
    const content =
      m.content === null || m.content === undefined
        ? ''
        : typeof m.content === 'string'
          ? m.content
          : m.content.map((p) => p.text).join('');
    const role = m.role === 'developer' ? 'system' : m.role;
    return { ...m, role, content, ...(m.name === undefined ? {} : { name: m.name }) };
  });
}

function asHttp(err: unknown): HttpError | unknown {
  if (!(err instanceof UserError)) return err;
  return badRequest(`${err.message}`, 'chat_template_error', 'messages');
}

/** The rendered prompt text (block rules see it); a 400 when the template refuses the chat. */
export function renderChatPrompt(
  chat: ChatPrompt,
  messages: readonly ChatMessage[],
  tools?: readonly ToolFunction[],
): string {
  try {
    // Tools through the template, or the fallback system message (tool-prompt.ts).
    const t = toolTurns(chat.template, turns(messages), tools);
    return chat.template.render(t.turns, t.options);
  } catch (err) {
    throw asHttp(err);
  }
}

export { loadChatPrompt, type ChatPrompt } from '../../inference/chat-template.js';

export interface EncodedChatPrompt {
  modelText: string;
  promptIds: number[];
  map: RedactionMap | undefined;
  redactions: number;
  /** The messages as the model saw them (content redacted), for a cloud chat model. */
  messages: ChatTurn[];
}

/** Redacts each message's content, then renders and encodes with the template. */
export function encodeChatPrompt(
  chat: ChatPrompt,
  messages: readonly ChatMessage[],
  redactor: Redactor,
  tools?: readonly ToolFunction[],
): EncodedChatPrompt {
  let map: RedactionMap | undefined;
  let redactions = 0;
  let list = turns(messages);
  if (redactor.enabled) {
    map = new RedactionMap();
    const redact = (text: string): string => {
      const r = redactor.redact(text, map);
      map = r.map;
      redactions += totalRedactions(r.counts);
      return r.text;
    };
    // Earlier tool calls' arguments too: a template may render them outside any content.
    list = list.map((m) => redactToolCalls({ ...m, content: redact(m.content) }, redact));
  }
  // Tools through the template, or the fallback system message (tool-prompt.ts).
  const withTools = toolTurns(chat.template, list, tools);
  try {
    const { text, ids } = chat.template.encode(withTools.turns, withTools.options);
    return { modelText: text, promptIds: ids, map, redactions, messages: list };
  } catch (err) {
    throw asHttp(err);
  }
}
