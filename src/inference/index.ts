/**
 * The inference engine's public API (docs/running-sites.md): load models, adapters and
 * tokenizers, run single-model or speculative generation, and implement or consume the `Verifier`
 * interface. The site runtime, the verifier service and the bench commands import from here.
 */
export {
  acceptGreedy,
  acceptRejectionSampling,
  residualDistribution,
  type AcceptanceResult,
} from './acceptance.js';
export {
  AdaptiveK,
  bestK,
  expectedTokensPerRound,
  K_MAX,
  K_MIN,
  type AdaptiveKOptions,
  type RoundObservation,
} from './adaptive-k.js';
export { DecodeState } from './decode-state.js';
export {
  collect,
  generate,
  generateSpeculative,
  type DoneEvent,
  type FinishReason,
  type GenerateEvent,
  type GenerateOptions,
  type SpeculativeOptions,
  type TokenEvent,
} from './generate.js';
export type { GenerationMode, GenerationStats } from './generation-stats.js';
export { ForwardBatcher, type ForwardBatcherOptions } from './forward-batcher.js';
export { InProcessVerifier, InProcessVerifierSession, MAX_DRAFT_TOKENS } from './in-process-verifier.js';
export { KvCache, type KvShape } from './kv-cache.js';
export { loadLoraAdapter, type LoadLoraOptions, type LoraAdapter } from './lora.js';
export { zeroLoraFeeds, type LoraFeeds, type LoraSlot, type LoraSlots } from './lora-slots.js';
export { loadModelConfig, type ModelConfig } from './model-config.js';
export {
  Logits,
  LmSession,
  MODEL_FILES,
  type BatchItem,
  type CausalLm,
  type ForwardResult,
  type LmSessionOptions,
  type ModelInputs,
} from './model-session.js';
export { analyzePrompt, promptSignals, type PromptSignals } from './prompt-signals.js';
export { createRng, Xoshiro128, type Rng } from './rng.js';
export {
  argmax,
  GREEDY,
  isGreedy,
  samplingDistribution,
  sampleFrom,
  sampleToken,
  softmax,
  validateSamplingParams,
  type SamplingParams,
} from './sampling.js';
export { Drafter, speculativeRound, type DraftProposal, type RoundResult } from './speculative.js';
export { StopMatcher } from './stop.js';
export { StreamDetokenizer, TextTokenizer, type DecodeOptions, type EncodeOptions } from './tokenizer.js';
export {
  toDense,
  toSparse,
  type DraftDistribution,
  type SparseDistribution,
  type Verifier,
  type VerifierSession,
  type VerifierStartOptions,
  type VerifyRequest,
  type VerifyResult,
} from './verifier.js';
