/**
 * The site runtime's request path (issue #5 items 2, 3, 6): what the site daemon composes with the
 * sync loop, hot swap and feedback. `loadGeneration` turns a materialized generation directory into
 * a servable one (sharing the model session with the previous generation when the model is the
 * same); `startRuntimeServer` serves the OpenAI-compatible API from whichever generation the
 * daemon's GenerationSource hands out. The shapes in between are in ../contract.ts.
 */
export {
  DEFAULT_POLICY,
  LoadedGeneration,
  loadGeneration,
  type LoadGenerationOptions,
} from '../engine/generation.js';
export { DEFAULT_MAX_TOKENS, isLoopbackHost, startRuntimeServer } from './server.js';
export { renderChat, CHAT_TURN_STOP, type EdgectlInfo } from './openai.js';
