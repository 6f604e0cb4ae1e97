/**
 * Stop sequences over streamed text.
 *
 * Generation streams text as it is decoded, but a stop string may arrive split across several
 * tokens ("\nUs" + "er:"). `StopMatcher` holds back only the tail of the text that could still
 * become a stop string, releases everything before it, and reports the stop with the text cut
 * just before the stop string (the OpenAI convention: the stop string itself is not returned).
 */

export interface StopPush {
  /** Text that is safe to show now. */
  text: string;
  /** A stop string was found; `text` ends right before it and generation must end. */
  stopped: boolean;
}

export class StopMatcher {
  private readonly stops: string[];
  private held = '';
  private done = false;

  constructor(stops: readonly string[] = []) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  get stopped(): boolean {
    return this.done;
  }

  push(text: string): StopPush {
    if (this.done) return { text: '', stopped: true };
    const buffer = this.held + text;
    let cut = -1;
    for (const stop of this.stops) {
      const at = buffer.indexOf(stop);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.done = true;
      this.held = '';
      return { text: buffer.slice(0, cut), stopped: true };
    }
    const keep = this.heldBackLength(buffer);
    this.held = buffer.slice(buffer.length - keep);
    return { text: buffer.slice(0, buffer.length - keep), stopped: false };
  }

  /** Generation ended for another reason: release what was held back. */
  flush(): string {
    const rest = this.done ? '' : this.held;
    this.held = '';
    return rest;
  }

  /** Length of the longest suffix of `buffer` that is a proper prefix of some stop string. */
  private heldBackLength(buffer: string): number {
    let best = 0;
    for (const stop of this.stops) {
      const max = Math.min(stop.length - 1, buffer.length);
      for (let n = max; n > best; n--) {
        if (buffer.endsWith(stop.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
