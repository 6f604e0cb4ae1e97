/**
 * Splits a model's output into assistant text and OpenAI tool calls as it streams (issue #18 item
 * 2; docs/running-sites.md, "Tools"). The output has one of the three shapes the tool grammar
 * (tool-calls.ts) allows: `single` — one call object `{"name": "f", "arguments": {...}}`;
 * `array` — a JSON array of such objects; `tagged` — free text in which each call is such an
 * object between `<tool_call>` and `</tool_call>`. Each call becomes deltas the way OpenAI streams
 * them: the first carries the call's index, a fresh `call_...` id and the function name (as soon as
 * the name is complete), later ones fragments of `arguments`, the model's own JSON text.
 *
 * It is a character scanner, not a parser of finished text, so the same code serves JSON bodies
 * and SSE: it tracks JSON nesting (strings and escapes included) to know where the arguments value
 * and the call object end, and holds back text that may still turn into a `<tool_call>` tag. A
 * call whose keys do not come in the grammar's order (name first) is still read, whole, when its
 * object closes. Output the grammar did not produce (a route without it) ends up as text.
 */
import { randomBytes } from 'node:crypto';

export const TOOL_CALL_BEGIN = '<tool_call>';
export const TOOL_CALL_END = '</tool_call>';

export type ToolOutputShape = 'single' | 'array' | 'tagged';

/** One streamed piece of a call: the first of a call has `id` and `name`. */
export interface ToolCallDelta {
  index: number;
  id?: string;
  name?: string;
  arguments: string;
}

/** A call as it stands (finished or cut short). */
export interface ScannedCall {
  id: string;
  name: string;
  arguments: string;
  /** The call object closed (false: the output ended inside it). */
  complete: boolean;
}

export interface ScanPiece {
  text: string;
  calls: ToolCallDelta[];
}

const HEADER = /^\s*\{\s*"name"\s*:\s*"([^"\\]*)"\s*,\s*"arguments"\s*:\s*/;
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** `call_` and 24 random alphanumerics, the form OpenAI's ids take. */
export function newCallId(): string {
  const bytes = randomBytes(24);
  let id = 'call_';
  for (const b of bytes) id += ID_ALPHABET[b % ID_ALPHABET.length];
  return id;
}

/** One call object, character by character (module comment). */
class CallScanner {
  raw = '';
  done = false;
  name: string | undefined;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private argsStart = -1;
  private argsEnd = -1;
  private emitted = 0;
  private container = false;

  /** Adds one character; false when it cannot belong to the object (nothing was consumed). */
  push(ch: string): boolean {
    if (this.depth === 0) {
      if (ch === '{') this.depth = 1;
      else if (!/\s/.test(ch)) return false;
      this.raw += ch;
      return true;
    }
    this.raw += ch;
    if (this.inString) {
      if (this.escaped) this.escaped = false;
      else if (ch === '\\') this.escaped = true;
      else if (ch === '"') this.inString = false;
    } else if (ch === '"') this.inString = true;
    else if (ch === '{' || ch === '[') {
      if (this.depth === 1 && this.argsStart >= 0 && this.raw.slice(this.argsStart, -1).trim() === '') {
        this.argsStart = this.raw.length - 1;
        this.container = true;
      }
      this.depth++;
    } else if (ch === '}' || ch === ']') {
      this.depth--;
      if (this.depth === 1 && this.container && this.argsEnd < 0) this.argsEnd = this.raw.length;
      if (this.depth === 0) this.close();
    }
    this.findHeader();
    return true;
  }

  private findHeader(): void {
    if (this.name !== undefined || this.argsStart >= 0) return;
    const m = HEADER.exec(this.raw);
    if (!m) return;
    this.name = m[1] as string;
    this.argsStart = m[0].length;
  }

  private close(): void {
    this.done = true;
    if (this.argsStart >= 0 && this.argsEnd < 0) this.argsEnd = this.raw.length - 1;
    if (this.name !== undefined) return;
    // Keys in another order: read the finished object whole.
    try {
      const v = JSON.parse(this.raw) as { name?: unknown; arguments?: unknown };
      this.name = typeof v.name === 'string' ? v.name : '';
      this.wholeArgs = typeof v.arguments === 'string' ? v.arguments : JSON.stringify(v.arguments ?? {});
    } catch {
      this.name = '';
      this.wholeArgs = '';
    }
  }

  private wholeArgs: string | undefined;

  /** Argument text not handed out yet (a container value streams; a bare value waits for its end). */
  takeArguments(): string {
    if (this.wholeArgs !== undefined) {
      const all = this.wholeArgs.slice(this.emitted);
      this.emitted = this.wholeArgs.length;
      return all;
    }
    if (this.argsStart < 0) return '';
    const end = this.argsEnd >= 0 ? this.argsEnd : this.container ? this.raw.length : -1;
    if (end < 0) return '';
    const text = this.raw.slice(this.argsStart, end);
    const out = text.slice(this.emitted);
    this.emitted = text.length;
    return this.done ? out.trimEnd() : out;
  }

  /** The arguments text so far (what a cut-short call carries). */
  argumentsSoFar(): string {
    if (this.wholeArgs !== undefined) return this.wholeArgs;
    if (this.argsStart < 0) return '';
    const end = this.argsEnd >= 0 ? this.argsEnd : this.raw.length;
    return this.raw.slice(this.argsStart, end).trim();
  }
}

type State = 'text' | 'call' | 'after_call' | 'array_open' | 'array_next' | 'rest';

/** The scanner of one answer (module comment). */
export class ToolCallStream {
  private state: State;
  private current: CallScanner | undefined;
  private readonly calls: { scanner: CallScanner; id: string; announced: boolean }[] = [];
  /** Text that may be the start of a tag, not yet given out. */
  private held = '';
  private text = '';

  constructor(
    readonly shape: ToolOutputShape,
    private readonly makeId: () => string = newCallId,
  ) {
    this.state = shape === 'tagged' ? 'text' : shape === 'array' ? 'array_open' : 'call';
  }

  /** Adds output text; returns the assistant text and call deltas it completes. */
  push(chunk: string): ScanPiece {
    const piece: ScanPiece = { text: '', calls: [] };
    for (const ch of chunk) this.step(ch, piece);
    this.collect(piece);
    return piece;
  }

  /** The output ended: held-back text is text after all. */
  end(): ScanPiece {
    const piece: ScanPiece = { text: '', calls: [] };
    this.collect(piece);
    if (this.held !== '') {
      piece.text += this.held;
      this.text += this.held;
      this.held = '';
    }
    return piece;
  }

  /** The assistant text (null when there is none but calls) and the calls, after `end()`. */
  result(): { content: string | null; calls: ScannedCall[] } {
    const calls = this.calls.map((c) => ({
      id: c.id,
      name: c.scanner.name ?? '',
      arguments: c.scanner.argumentsSoFar(),
      complete: c.scanner.done,
    }));
    const content = calls.length > 0 && this.text.trim() === '' ? null : this.text;
    return { content, calls };
  }

  private step(ch: string, piece: ScanPiece): void {
    switch (this.state) {
      case 'text':
        return this.textChar(ch, piece);
      case 'call':
        return this.callChar(ch, piece);
      case 'after_call':
        return this.afterCallChar(ch, piece);
      case 'array_open':
        if (ch === '[') this.state = 'array_next';
        else if (!/\s/.test(ch)) this.toRest(ch, piece);
        return;
      case 'array_next':
        if (ch === ',' || /\s/.test(ch)) return;
        if (ch === ']') this.state = 'rest';
        else {
          this.state = 'call';
          this.callChar(ch, piece);
        }
        return;
      case 'rest':
        if (!/\s/.test(ch) || this.text !== '') this.emitText(ch, piece);
        return;
    }
  }

  private textChar(ch: string, piece: ScanPiece): void {
    this.held += ch;
    if (this.held === TOOL_CALL_BEGIN) {
      this.held = '';
      this.state = 'call';
      return;
    }
    // Give out what can no longer start the tag.
    let keep = this.held;
    while (keep !== '' && !TOOL_CALL_BEGIN.startsWith(keep)) keep = keep.slice(1);
    const out = this.held.slice(0, this.held.length - keep.length);
    this.held = keep;
    if (out !== '') this.emitText(out, piece);
  }

  private callChar(ch: string, piece: ScanPiece): void {
    if (!this.current) {
      this.current = new CallScanner();
      this.calls.push({ scanner: this.current, id: this.makeId(), announced: false });
    }
    if (!this.current.push(ch)) {
      // Not a call after all: what the scanner read, and this, are text.
      this.calls.pop();
      const raw = this.current.raw;
      this.current = undefined;
      this.toRest(raw + ch, piece);
      return;
    }
    if (!this.current.done) return;
    this.collect(piece);
    this.current = undefined;
    this.state = this.shape === 'tagged' ? 'after_call' : this.shape === 'array' ? 'array_next' : 'rest';
  }

  private afterCallChar(ch: string, piece: ScanPiece): void {
    this.held += ch;
    if (this.held.trimStart() === TOOL_CALL_END) {
      this.held = '';
      this.state = 'text';
    } else if (!TOOL_CALL_END.startsWith(this.held.trimStart())) {
      const out = this.held;
      this.held = '';
      this.state = 'text';
      this.emitText(out, piece);
    }
  }

  private toRest(text: string, piece: ScanPiece): void {
    this.state = 'rest';
    this.emitText(text, piece);
  }

  private emitText(text: string, piece: ScanPiece): void {
    piece.text += text;
    this.text += text;
  }

  /** Deltas for every call with something new: the header once the name is known, then arguments. */
  private collect(piece: ScanPiece): void {
    this.calls.forEach((c, index) => {
      const s = c.scanner;
      if (s.name === undefined) return;
      const args = s.takeArguments();
      if (!c.announced) {
        c.announced = true;
        piece.calls.push({ index, id: c.id, name: s.name, arguments: args });
      } else if (args !== '') piece.calls.push({ index, arguments: args });
    });
  }
}
