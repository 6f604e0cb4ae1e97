/**
 * Loading one materialized generation (`generations/<id>/{model,adapters/<name>,policy}`, docs/running-sites.md) into what the request path serves from: the draft model session and its tokenizer, every
 * assigned LoRA adapter as ready-made feeds, and the effective policy with its redactor, block rules
 * and verifier circuit breaker compiled once.
 *
 * The model session is the expensive part (an ONNX session of up to hundreds of MiB), so it is
 * shared: when the previous generation has the same model manifest digest, the new one takes a
 * counted reference to its session and tokenizer, and a generation's `dispose` frees the session only
 * when the last generation holding it lets go. That is what lets an adapter or policy rollout switch
 * generations without reloading the model (issue #5, hot swap).
 *
 * Names: clients address the model as `<model>` or `<model>:<adapter>`, with the artifact *names*
 * from the refs in the feedback context (`model/draft@1.0.0` -> `draft`), never versions, so traffic
 * keeps its name across rollouts. A generation without a policy serves with safe defaults
 * (`DEFAULT_POLICY`: edge-only, no overrides to other routes, no verifier use).
 *
 * Shadow adapters (`shadow/<name>`, a rollout's shadow step) load like adapters on the same model
 * session but are never addressable by clients: `shadow.ts` runs them after a response is sent.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../../foundation/errors.js';
import { modelDirCreated } from '../../http/openai-models.js';
import { loadLoraAdapter, type LoraAdapter } from '../../inference/lora.js';
import { LmSession } from '../../inference/model-session.js';
import { TextTokenizer, TOKENIZER_FILE } from '../../inference/tokenizer.js';
import { BlockRules } from '../../policy/block.js';
import { loadPolicyDir, withDefaults, type EffectivePolicy } from '../../policy/load.js';
import { loadChatPrompt, type ChatPrompt } from './chat-prompt.js';
import { Redactor } from '../../policy/redact.js';
import type { FeedbackContext } from '../../feedback/accumulator.js';
import type { ServedGeneration } from '../contract.js';
import { SiteIndexes } from './site-indexes.js';

/** The policy of a generation that has none: everything stays on the draft model. */
export const DEFAULT_POLICY: EffectivePolicy = withDefaults({
  version: 1,
  description: 'built-in default (no policy assigned): edge-only',
  routing: { default: 'edge', rules: [], overrides: ['edge'] },
  block: [],
});

export interface LoadGenerationOptions {
  id: string;
  context: FeedbackContext;
  /** The generation serving now: its model session is reused when the model digest is the same. */
  previous?: LoadedGeneration;
  /** ONNX Runtime intra-op threads of the draft session (default 1). */
  threads?: number;
  /**
   * The model artifact's publish time (its manifest's `created`, unix seconds): the OpenAI
   * `created` of /v1/models. Default: the model's config.json mtime (src/http/openai-models.ts).
   */
  modelCreated?: number;
}

/** A shadow adapter and the ref (pinned) its runs are reported under. */
export interface ShadowAdapter {
  adapter: LoraAdapter;
  ref: { ref: string; manifestDigest: string };
}

/** What a request that leaves these fields out gets (see `requestDefaults`). */
export interface RequestDefaults {
  temperature: number;
  topP: number | undefined;
  maxTokens: number | undefined;
  /** generation_config.json `repetition_penalty` (applies whatever do_sample says, as in HF). */
  repetitionPenalty: number | undefined;
}

/** A model session and tokenizer shared by every generation with the same model digest. */
class SharedModel {
  private refs = 1;
  private chatPrompt: ChatPrompt | undefined;

  readonly defaults: RequestDefaults;

  constructor(
    readonly key: string,
    readonly session: LmSession,
    readonly tokenizer: TextTokenizer,
    readonly tokenizerSha256: string,
  ) {
    const d = session.config.defaults;
    const greedy = readGenerationConfig(session.dir)?.do_sample === false;
    this.defaults = {
      temperature: greedy ? 0 : (d.temperature ?? 1),
      topP: greedy ? undefined : d.topP,
      maxTokens: d.maxNewTokens,
      repetitionPenalty: d.repetitionPenalty,
    };
  }

  /** The model's chat template and turn stops, loaded on the first chat request. */
  get chat(): ChatPrompt {
    this.chatPrompt ??= loadChatPrompt(this.session.dir, this.tokenizer);
    return this.chatPrompt;
  }

  retain(): this {
    if (this.refs <= 0) throw new Error('model session already released');
    this.refs++;
    return this;
  }

  async release(): Promise<void> {
    if (--this.refs === 0) await this.session.release();
  }

  get references(): number {
    return this.refs;
  }
}

function artifactName(ref: string): string {
  const slash = ref.indexOf('/');
  const at = ref.indexOf('@');
  return ref.slice(slash + 1, at < 0 ? undefined : at);
}

function isDir(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

export class LoadedGeneration implements ServedGeneration {
  readonly adapterNames: readonly string[];
  readonly blockRules: BlockRules;
  readonly redactor: Redactor;
  private disposed = false;

  private constructor(
    readonly id: string,
    readonly dir: string,
    readonly context: FeedbackContext,
    readonly modelName: string,
    private readonly shared: SharedModel,
    readonly adapters: ReadonlyMap<string, LoraAdapter>,
    readonly policy: EffectivePolicy,
    /** True when the generation has no policy directory and serves with DEFAULT_POLICY. */
    readonly defaultPolicy: boolean,
    /** Shadow adapters by name, with the ref each came from (empty outside a shadow step). */
    readonly shadowAdapters: ReadonlyMap<string, ShadowAdapter>,
    /** OpenAI `created` of the served model ids (LoadGenerationOptions.modelCreated). */
    readonly created: number,
    /** Retrieval indexes by name (site-indexes.ts), closed with the generation. */
    readonly indexes: SiteIndexes = SiteIndexes.empty(),
  ) {
    this.adapterNames = [...adapters.keys()].sort();
    this.blockRules = new BlockRules(policy);
    this.redactor = new Redactor(policy);
  }

  static async load(dir: string, opts: LoadGenerationOptions): Promise<LoadedGeneration> {
    const modelDir = join(dir, 'model');
    if (!isDir(modelDir)) {
      throw new UserError(`generation ${opts.id} (${dir}) has no model directory`, {
        code: 'E_GENERATION',
        suggestion: 'Assign a model to the site (fleet state `model`) and let sync materialize it.',
      });
    }
    const modelRef = opts.context.refs.model;
    // The manifest digest identifies the model bytes; without one (a hand-built directory) the
    // resolved path does, which is still safe: a new sync always writes a new directory.
    const key = modelRef?.manifestDigest ?? `path:${realpathSync(modelDir)}`;
    const modelName = modelRef ? artifactName(modelRef.ref) : (readArtifactName(modelDir) ?? 'model');
    const prev = opts.previous?.shared;
    let shared: SharedModel;
    if (prev && prev.key === key && prev.references > 0) shared = prev.retain();
    else {
      const tokenizer = TextTokenizer.load(modelDir);
      const tokenizerSha256 = createHash('sha256')
        .update(readFileSync(join(modelDir, TOKENIZER_FILE)))
        .digest('hex');
      const session = await LmSession.load(modelDir, { intraOpThreads: opts.threads ?? 1 });
      shared = new SharedModel(key, session, tokenizer, tokenizerSha256);
    }
    try {
      const adapters = new Map<string, LoraAdapter>();
      const adaptersDir = join(dir, 'adapters');
      if (isDir(adaptersDir)) {
        for (const name of readdirSync(adaptersDir).sort()) {
          const adapterDir = join(adaptersDir, name);
          if (!isDir(adapterDir)) continue;
          adapters.set(name, loadLoraAdapter(adapterDir, shared.session.inputs.lora, { name }));
        }
      }
      const shadowAdapters = new Map<string, ShadowAdapter>();
      const shadowDir = join(dir, 'shadow');
      if (isDir(shadowDir)) {
        for (const name of readdirSync(shadowDir).sort()) {
          const adapterDir = join(shadowDir, name);
          const ref = opts.context.refs.shadow?.find((r) => artifactName(r.ref) === name);
          if (!isDir(adapterDir) || !ref) continue;
          const adapter = loadLoraAdapter(adapterDir, shared.session.inputs.lora, { name });
          shadowAdapters.set(name, { adapter, ref: { ref: ref.ref, manifestDigest: ref.manifestDigest } });
        }
      }
      const policyDir = join(dir, 'policy');
      const hasPolicy = isDir(policyDir);
      const policy = hasPolicy ? loadPolicyDir(policyDir) : DEFAULT_POLICY;
      const indexes = await SiteIndexes.open(dir, opts.context);
      return new LoadedGeneration(
        opts.id,
        dir,
        opts.context,
        modelName,
        shared,
        adapters,
        policy,
        !hasPolicy,
        shadowAdapters,
        opts.modelCreated ?? modelDirCreated(modelDir),
        indexes,
      );
    } catch (err) {
      await shared.release();
      throw err;
    }
  }

  get model(): LmSession {
    return this.shared.session;
  }

  get tokenizer(): TextTokenizer {
    return this.shared.tokenizer;
  }

  /** SHA-256 of the draft's tokenizer.json: the verifier must use the same one. */
  get tokenizerSha256(): string {
    return this.shared.tokenizerSha256;
  }

  /**
   * Request defaults from the model's generation_config.json, as Hugging Face servers apply them:
   * `do_sample: false` means greedy, else its temperature/top_p; `max_new_tokens` caps a request
   * that gives no max_tokens. OpenAI's own defaults (temperature 1) apply when the file is silent.
   */
  get requestDefaults(): RequestDefaults {
    return this.shared.defaults;
  }

  /** How chats are rendered for this model (chat-prompt.ts). */
  get chat(): ChatPrompt {
    return this.shared.chat;
  }

  /** Positions the draft model accepts (prompt + output). */
  get maxPositions(): number {
    return this.shared.session.config.maxPositions ?? Number.MAX_SAFE_INTEGER;
  }

  /** The ids clients address: `<model>` and `<model>:<adapter>` for each adapter. */
  get modelIds(): string[] {
    return [this.modelName, ...this.adapterNames.map((a) => `${this.modelName}:${a}`)];
  }

  /** Whether this generation shares its model session with `other` (no reload happened). */
  sharesModelWith(other: LoadedGeneration): boolean {
    return this.shared === other.shared;
  }

  /** Idempotent; the model session is freed when no generation holds it any more. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    // Indexes close alongside the model release; none (the common case) adds no await at all.
    const closing = this.indexes.all().length > 0 ? this.indexes.close() : undefined;
    await this.shared.release();
    if (closing) await closing;
  }
}

/** generation_config.json's do_sample (ModelConfig keeps only the sampling values). */
function readGenerationConfig(dir: string): { do_sample?: unknown } | undefined {
  const file = join(dir, 'generation_config.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as { do_sample?: unknown };
  } catch {
    return undefined; // loadModelConfig already validated the file; a race is not worth failing on
  }
}

/** `name:` of an artifact.yaml next to a hand-assembled model directory (tests, local runs). */
function readArtifactName(dir: string): string | undefined {
  const file = join(dir, 'artifact.yaml');
  if (!existsSync(file)) return undefined;
  const m = /^name:\s*([A-Za-z0-9._-]+)\s*$/m.exec(readFileSync(file, 'utf8'));
  return m?.[1];
}

/** Loads generation directory `dir` (see the module comment). */
export function loadGeneration(dir: string, opts: LoadGenerationOptions): Promise<LoadedGeneration> {
  return LoadedGeneration.load(dir, opts);
}
