/**
 * What every verifier route shares: the model, the engine's in-process verifier whose sessions the
 * table holds, admission control and the metrics, plus `forward` — the way the completions route
 * runs the model, so that every pass is admitted, timed and counted (forward calls and positions
 * processed are what the benchmark bills the verifier for; the verify routes count their one pass
 * per round themselves). Also the small helpers routes need to speak the protocol (sampling params
 * from the wire, an abort signal that fires when the client disconnects).
 */
import type { FastifyReply } from 'fastify';
import type { CausalLm, ForwardResult } from '../../inference/model-session.js';
import type { InProcessVerifier, InProcessVerifierSession } from '../../inference/in-process-verifier.js';
import type { KvCache } from '../../inference/kv-cache.js';
import { validateSamplingParams, type SamplingParams } from '../../inference/sampling.js';
import { badRequest } from '../../http/http.js';
import type { AdmissionQueue } from './admission.js';
import type { ForwardKind, VerifierMetrics } from './metrics.js';
import type { SessionTable } from './session-table.js';
import type { VerifierModel } from './verifier-model.js';

export interface VerifierContext {
  model: VerifierModel;
  /** The engine's verifier over the model; sessions are its sessions. */
  verifier: InProcessVerifier;
  sessions: SessionTable<InProcessVerifierSession>;
  admission: AdmissionQueue;
  metrics: VerifierMetrics;
  forward(
    kind: ForwardKind,
    ids: readonly number[],
    cache: KvCache | undefined,
    signal?: AbortSignal,
  ): Promise<ForwardResult>;
}

export function makeForward(
  lm: CausalLm,
  admission: AdmissionQueue,
  metrics: VerifierMetrics,
): VerifierContext['forward'] {
  return (kind, ids, cache, signal) =>
    admission.run(async () => {
      const t0 = performance.now();
      const result = await lm.forward(ids, cache);
      metrics.forward(kind, ids.length, (performance.now() - t0) / 1000);
      return result;
    }, signal);
}

/** Wire sampling fields to engine params; a bad combination is a 400 naming the field. */
export function samplingFromWire(
  wire:
    | { temperature?: number; top_p?: number; top_k?: number; repetition_penalty?: number | undefined }
    | undefined,
  where: string,
): SamplingParams {
  const params: SamplingParams = { temperature: wire?.temperature ?? 0 };
  if (wire?.top_p !== undefined) params.topP = wire.top_p;
  if (wire?.top_k !== undefined) params.topK = wire.top_k;
  if (wire?.repetition_penalty !== undefined) params.repetitionPenalty = wire.repetition_penalty;
  try {
    validateSamplingParams(params, where);
  } catch (err) {
    throw badRequest((err as Error).message, 'invalid_sampling');
  }
  return params;
}

/** Aborts when the client closes the connection before the response is complete. */
export function clientGoneSignal(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  return ac.signal;
}
