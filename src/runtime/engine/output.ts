/**
 * Turns generated token ids into the text the user sees, in three stages: incremental
 * detokenization (in the prompt's context), stop strings (held back while a stop could still
 * complete, cut before it), then placeholder restoration (StreamRestorer holds back a placeholder
 * split across chunks, so no chunk ever shows `<EMA` and the next `IL_1>`). The runtime owns this
 * pipeline instead of the engine's because a generation may change engines mid-stream (speculative
 * → edge when the verifier dies) and the held-back text must survive the switch.
 *
 * Stop strings are matched on the model's (redacted) text: that is what the model generates, and a
 * stop must not depend on what a placeholder stands for.
 */
import { StopMatcher } from '../../inference/stop.js';
import type { StreamDetokenizer, TextTokenizer } from '../../inference/tokenizer.js';
import { StreamRestorer, type RedactionMap } from '../../policy/redact.js';

export class OutputText {
  private readonly detok: StreamDetokenizer;
  private readonly stops: StopMatcher;
  private readonly restorer: StreamRestorer | undefined;
  private ended = false;
  /** Tokens pushed (the completion tokens of usage). */
  tokens = 0;

  constructor(
    tokenizer: TextTokenizer,
    promptIds: readonly number[],
    stops: readonly string[],
    map: RedactionMap | undefined,
  ) {
    this.detok = tokenizer.streamDecoder(promptIds);
    this.stops = new StopMatcher(stops);
    this.restorer = map && map.size > 0 ? new StreamRestorer(map) : undefined;
  }

  /** Adds one token; `stopped` means a stop string ended the output (then `text` is final). */
  push(token: number): { text: string; stopped: boolean } {
    if (this.ended) return { text: '', stopped: true };
    this.tokens++;
    const r = this.stops.push(this.detok.push(token));
    if (r.stopped) {
      this.ended = true;
      return { text: this.restore(r.text) + this.restoreEnd(), stopped: true };
    }
    return { text: this.restore(r.text), stopped: false };
  }

  /**
   * Adds text a cloud model generated (it has no ids in this tokenizer): the same stops and
   * restoration as tokens get, without the detokenizer. `tokens` is not counted here.
   */
  pushText(text: string): { text: string; stopped: boolean } {
    if (this.ended) return { text: '', stopped: true };
    const r = this.stops.push(text);
    if (r.stopped) {
      this.ended = true;
      return { text: this.restore(r.text) + this.restoreEnd(), stopped: true };
    }
    return { text: this.restore(r.text), stopped: false };
  }

  /** Everything held back, when generation ended for another reason than a stop string. */
  end(): string {
    if (this.ended) return '';
    this.ended = true;
    const r = this.stops.push(this.detok.flush());
    const text = r.stopped ? r.text : r.text + this.stops.flush();
    return this.restore(text) + this.restoreEnd();
  }

  /** True when the last `end()` text came from a stop string found in the detokenizer's tail. */
  get stopped(): boolean {
    return this.stops.stopped;
  }

  private restore(text: string): string {
    return this.restorer ? this.restorer.push(text) : text;
  }

  private restoreEnd(): string {
    return this.restorer ? this.restorer.end() : '';
  }
}
