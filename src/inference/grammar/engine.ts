/**
 * The grammar engine (issue #18 item 1): compiles a `GrammarConstraint` for one tokenizer with
 * xgrammar and hands out matchers. Schemas are checked with ajv first (schema-check.ts), so most
 * bad input never reaches WebAssembly.
 *
 * Caches: the tokenizer's `TokenizerInfo` + `GrammarCompiler` once per (tokenizer, vocabulary
 * size, end-of-sequence ids), compiled grammars per (tokenizer, constraint) in a small LRU; both
 * belong to the current xgrammar instance. Faults: when xgrammar still throws while compiling
 * (its C++ `abort()`s on schemas it cannot handle, e.g. a lookbehind `pattern`), the instance
 * may be left inconsistent, so it is dropped with all its caches and the next call loads a fresh
 * one (loader.ts); the request gets a UserError (400) carrying xgrammar's own `[FATAL]` reason,
 * and the process keeps serving. Matchers already handed out keep their old instance until done.
 */
import type { ValidateFunction } from 'ajv';
import { UserError } from '../../foundation/errors.js';
import type { TextTokenizer } from '../tokenizer.js';
import { loadXgrammar, type XgrammarModule } from './loader.js';
import { ConstraintMatcher } from './matcher.js';
import { checkJson, compileSchema } from './schema-check.js';
import type { GrammarConstraint, StructuredCheck } from './types.js';
import { tokenizerVocab } from './vocab.js';

type Compiler = Awaited<ReturnType<XgrammarModule['GrammarCompiler']['createGrammarCompiler']>>;
type Compiled = Awaited<ReturnType<Compiler['compileBuiltinJSONGrammar']>>;

/** Most compiled grammars kept per process (a compiled JSON schema is a few hundred kB of wasm memory). */
const MAX_COMPILED = 64;
/**
 * JSON layout: one line, `json.dumps` separators, no free whitespace. Free whitespace lets a weak
 * model pad forever (issue #18: random fixture models never closed an object), and xgrammar's
 * default without it is indent 2, whose newlines a chat's turn stop (`\n` in the transcript
 * format) would cut. A raw newline cannot occur inside one-line JSON (strings escape it).
 */
const LAYOUT = { anyWhitespace: false, indent: -1, separators: [', ', ': '] as [string, string] };

interface Instance {
  x: XgrammarModule;
  /** Why the last abort happened (xgrammar prints it through console.error). */
  fatal: string[];
  compilers: Map<TextTokenizer, Map<string, Promise<Compiler>>>;
  compiled: Map<string, Promise<Compiled>>;
}

/** A constraint compiled for one tokenizer: makes matchers and checks finished outputs. */
export class CompiledConstraint {
  constructor(
    readonly constraint: GrammarConstraint,
    private readonly compiled: Compiled,
    private readonly x: XgrammarModule,
    readonly vocabSize: number,
    private readonly validate: ValidateFunction | undefined,
  ) {}

  /** A fresh matcher at the start of the grammar. */
  async matcher(): Promise<ConstraintMatcher> {
    return new ConstraintMatcher(
      await this.x.GrammarMatcher.createGrammarMatcher(this.compiled),
      this.vocabSize,
    );
  }

  /** Whether a finished output satisfies the constraint (structural tags: not checked here). */
  check(text: string): StructuredCheck {
    if (this.constraint.kind === 'structural_tag') return { valid: true };
    return checkJson(text, this.validate);
  }
}

export interface CompileOptions {
  /** Rows of the model's logits (>= the tokenizer's vocabulary). */
  vocabSize: number;
  /** End-of-sequence ids: allowed only where the grammar can end. */
  eosTokenIds: readonly number[];
  /** The request field a schema error names (default `response_format.json_schema.schema`). */
  where?: string;
}

export class GrammarEngine {
  private instance: Instance | undefined;
  /** Instances discarded after an abort (for tests and logs). */
  reloads = 0;

  private current(): Instance {
    if (this.instance) return this.instance;
    const fatal: string[] = [];
    this.instance = { x: loadXgrammar(fatal), fatal, compilers: new Map(), compiled: new Map() };
    return this.instance;
  }

  private compiler(inst: Instance, tokenizer: TextTokenizer, opts: CompileOptions): Promise<Compiler> {
    let perTokenizer = inst.compilers.get(tokenizer);
    if (!perTokenizer) inst.compilers.set(tokenizer, (perTokenizer = new Map()));
    const key = `${opts.vocabSize}|${[...opts.eosTokenIds].join(',')}`;
    let c = perTokenizer.get(key);
    if (!c) {
      const v = tokenizerVocab(tokenizer, opts.vocabSize);
      c = inst.x.TokenizerInfo.createTokenizerInfo(v.encoded, v.vocabType, v.prependSpace, opts.vocabSize, [
        ...opts.eosTokenIds,
      ]).then((info) => inst.x.GrammarCompiler.createGrammarCompiler(info));
      perTokenizer.set(key, c);
    }
    return c;
  }

  /** Checks and compiles `constraint` (cached); UserError (400) for a schema that cannot be used. */
  async compile(
    tokenizer: TextTokenizer,
    constraint: GrammarConstraint,
    opts: CompileOptions,
  ): Promise<CompiledConstraint> {
    const where = opts.where ?? 'response_format.json_schema.schema';
    const validate = checkConstraint(constraint, where);
    const inst = this.current();
    const key = `${tokenizerKey(tokenizer)}|${opts.vocabSize}|${[...opts.eosTokenIds].join(',')}|${JSON.stringify(constraint)}`;
    let compiled = inst.compiled.get(key);
    if (compiled)
      inst.compiled.delete(key); // re-inserted below: most recently used last
    else compiled = this.compileFresh(inst, tokenizer, constraint, opts);
    inst.compiled.set(key, compiled);
    if (inst.compiled.size > MAX_COMPILED) inst.compiled.delete(inst.compiled.keys().next().value as string);
    try {
      return new CompiledConstraint(constraint, await compiled, inst.x, opts.vocabSize, validate);
    } catch (err) {
      if (err instanceof UserError) throw err;
      // xgrammar threw (an abort in wasm): this instance is suspect, start over with a fresh one.
      if (this.instance === inst) {
        this.instance = undefined;
        this.reloads++;
      }
      // `[FATAL] /path/file.cc:75: Regex parsing error ...: Lookbehind is not supported yet.`
      const fatal = inst.fatal.findLast((line) => line.includes('[FATAL]'));
      const reason = fatal?.replace(/^.*?\[FATAL\]\s*(\S+:\d+:\s*)?/, '') ?? (err as Error).message;
      throw new UserError(`${where}: the grammar engine cannot compile this schema: ${reason}`, {
        code: 'E_GRAMMAR',
        suggestion: 'Simplify the schema (xgrammar supports JSON Schema without lookaround regex patterns).',
      });
    }
  }

  private async compileFresh(
    inst: Instance,
    tokenizer: TextTokenizer,
    constraint: GrammarConstraint,
    opts: CompileOptions,
  ): Promise<Compiled> {
    const compiler = await this.compiler(inst, tokenizer, opts);
    inst.fatal.length = 0;
    switch (constraint.kind) {
      case 'json_object':
        // strictMode off: any properties; the schema keeps it an object, as OpenAI's json_object does.
        return compiler.compileJSONSchema(
          '{"type":"object"}',
          LAYOUT.anyWhitespace,
          LAYOUT.indent,
          LAYOUT.separators,
          false,
        );
      case 'json_schema':
        return compiler.compileJSONSchema(
          JSON.stringify(constraint.schema),
          LAYOUT.anyWhitespace,
          LAYOUT.indent,
          LAYOUT.separators,
          true,
        );
      case 'structural_tag': {
        const items = constraint.tags.map(
          (t) => new inst.x.StructuralTagItem(t.begin, JSON.stringify(t.schema), t.end),
        );
        return compiler.compileStructuralTag(items, constraint.triggers);
      }
    }
  }
}

/** Ajv checks of every schema in `constraint`; the validator of a json_schema constraint. */
function checkConstraint(constraint: GrammarConstraint, where: string): ValidateFunction | undefined {
  if (constraint.kind === 'json_schema') return compileSchema(constraint.schema, where);
  if (constraint.kind === 'structural_tag') {
    constraint.tags.forEach((t, i) => compileSchema(t.schema, `${where}.tags[${i}].schema`));
  }
  return undefined;
}

const tokenizerIds = new WeakMap<TextTokenizer, number>();
let nextTokenizerId = 1;

/** A process-unique number per tokenizer object (compiled grammars are per tokenizer). */
function tokenizerKey(tokenizer: TextTokenizer): number {
  let id = tokenizerIds.get(tokenizer);
  if (id === undefined) tokenizerIds.set(tokenizer, (id = nextTokenizerId++));
  return id;
}

let shared: GrammarEngine | undefined;

/** The process's grammar engine (one xgrammar instance at a time). */
export function grammarEngine(): GrammarEngine {
  shared ??= new GrammarEngine();
  return shared;
}
