/**
 * The route executor's view of verifier calls (route-executor.ts): `VerifierCallError` tags a
 * failure as the verifier's (as opposed to the draft's or the client's) with a metrics label, so
 * only verifier failures reach the circuit breaker and the fallback; `CountingVerifier` wraps a
 * verifier to count and time each speculative round — a verify call's own duration and the draft
 * time before it (since the session started or the previous answer came back), which a shadow run
 * of the request reuses as its costs; shadow runs (src/runtime/engine/shadow.ts) count their own
 * rounds with it too.
 */
import type {
  Verifier,
  VerifierSession,
  VerifierStartOptions,
  VerifyRequest,
  VerifyResult,
} from '../../inference/verifier.js';

/** A failure of the verifier (as opposed to the draft or the client), with a metrics label. */
export class VerifierCallError extends Error {
  constructor(
    cause: unknown,
    readonly kind: string,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
  }

  /** Tags `err` with the kind its code names (`E_TIMEOUT` -> `timeout`), else `error`. */
  static from(err: unknown): VerifierCallError {
    const code = (err as { code?: unknown }).code;
    return new VerifierCallError(
      err,
      typeof code === 'string' ? code.toLowerCase().replace(/^e_/, '') : 'error',
    );
  }
}

export async function verifierCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw err instanceof VerifierCallError ? err : VerifierCallError.from(err);
  }
}

/** Counts and times rounds (see the module comment) and tags verifier failures. */
export class CountingVerifier implements Verifier {
  constructor(
    private readonly inner: Verifier,
    private readonly onRound: (drafted: number, accepted: number, draftMs: number, verifyMs: number) => void,
  ) {}

  get vocabSize(): number {
    return this.inner.vocabSize;
  }

  async start(promptIds: readonly number[], opts?: VerifierStartOptions): Promise<VerifierSession> {
    const session = await verifierCall(() => this.inner.start(promptIds, opts));
    const onRound = this.onRound;
    let lastAnswer = performance.now();
    return {
      id: session.id,
      async verify(request: VerifyRequest): Promise<VerifyResult> {
        const sent = performance.now();
        const r = await verifierCall(() => session.verify(request));
        const answered = performance.now();
        const draftMs = sent - lastAnswer;
        lastAnswer = answered;
        if (!(Number.isInteger(r.accepted) && r.accepted >= 0 && r.accepted <= request.draft.length)) {
          throw new VerifierCallError(
            new Error(`the verifier accepted ${r.accepted} of ${request.draft.length} drafted tokens`),
            'protocol',
          );
        }
        onRound(request.draft.length, r.accepted, draftMs, answered - sent);
        return r;
      },
      // Not awaited: the DELETE is best effort (the verifier's TTL frees the session anyway), and
      // waiting for it would add a round trip to every answer, or a whole timeout after a failure.
      close: () => {
        void session.close().catch(() => undefined);
        return Promise.resolve();
      },
    };
  }
}
