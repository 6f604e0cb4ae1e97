/**
 * Server-sent events for the cloud clients (issue #18 item 5): the `data:` payloads of an SSE
 * response body, parsed by a maintained parser (`eventsource-parser`) instead of by hand, from bytes
 * decoded by one streaming `TextDecoder`. Both halves fix failures of the old hand-written reader:
 * the parser accepts every legal line ending (LF, CRLF, CR), so a server that frames events with
 * `\r\n\r\n` no longer looks like one that never sent `[DONE]`; and the streaming decoder keeps a
 * multi-byte UTF-8 character split across two TCP writes whole, where decoding each chunk on its
 * own turned both halves into U+FFFD. `sseJson` adds the OpenAI convention on top: JSON per event,
 * `[DONE]` ends the stream, an `error` object in an event is the server's failure, and a body that
 * ends before `[DONE]` is a failure too (a truncated answer must not pass for a whole one).
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { OperationalError } from '../../foundation/errors.js';

/** The events of an SSE body, in order, as they complete. */
export async function* sseEvents(
  body: AsyncIterable<Uint8Array | string>,
): AsyncGenerator<EventSourceMessage, void, undefined> {
  const decoder = new TextDecoder('utf-8');
  const ready: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (e) => ready.push(e) });
  let last = '';
  const feed = (text: string) => {
    if (text === '') return;
    parser.feed(text);
    last = text;
  };
  for await (const chunk of body) {
    feed(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    while (ready.length > 0) yield ready.shift() as EventSourceMessage;
  }
  // Bytes of an unfinished character at the very end decode to U+FFFD here, as they should.
  feed(decoder.decode());
  // A final CR waits for a possible LF (CRLF is one line end): at the end of the body it is a line
  // end by itself. An event is only dispatched by its blank line, so one the body ended in the
  // middle of is still dropped.
  if (last.endsWith('\r')) parser.feed('\n');
  while (ready.length > 0) yield ready.shift() as EventSourceMessage;
}

/** Where a stream's failures come from, for messages ("verifier", "cloud model https://…"). */
export interface SseSource {
  name: string;
  /** Error code for a stream that breaks the protocol (malformed JSON, no [DONE]). */
  protocolCode: string;
}

/**
 * The JSON objects of an OpenAI-style event stream up to `[DONE]`. Throws an OperationalError for
 * an event that is not JSON, an `{error}` event, or a body that ends before `[DONE]`.
 */
export async function* sseJson(
  body: AsyncIterable<Uint8Array | string>,
  source: SseSource,
): AsyncGenerator<Record<string, unknown>, void, undefined> {
  for await (const event of sseEvents(body)) {
    const data = event.data;
    if (data === '') continue;
    if (data.trim() === '[DONE]') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      throw new OperationalError(`${source.name} sent an event that is not JSON: ${clip(data)}`, {
        code: source.protocolCode,
      });
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new OperationalError(`${source.name} sent an event that is not a JSON object: ${clip(data)}`, {
        code: source.protocolCode,
      });
    }
    const obj = parsed as Record<string, unknown>;
    const error = obj.error as { message?: unknown } | undefined;
    if (error !== undefined && error !== null) {
      const message = typeof error.message === 'string' ? error.message : clip(JSON.stringify(error));
      throw new OperationalError(`${source.name} stream failed: ${message}`, { code: source.protocolCode });
    }
    yield obj;
  }
  throw new OperationalError(`${source.name} closed the completion stream before [DONE]`, {
    code: source.protocolCode,
  });
}

function clip(text: string): string {
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
}
