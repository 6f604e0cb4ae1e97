/**
 * Loads `@mlc-ai/web-xgrammar` (the WebAssembly build of xgrammar, the grammar engine vLLM and
 * SGLang use) into Node, one fresh WebAssembly instance per call.
 *
 * Why this loader exists: the package's `lib/index.js` is a UMD bundle inside a `"type": "module"`
 * package, so Node parses it as ESM, where its `exports`/`module`/`require` do not exist, and a
 * plain `import` fails. We read the file and run it as a CommonJS function body with
 * `vm.compileFunction`, giving it `exports`, `module`, `require` (createRequire), `__filename`.
 * The bundle's Emscripten glue does one dynamic `import('module')` (to get createRequire); a
 * function compiled by `vm` may only `import()` with `importModuleDynamically`, and the one value
 * that works without `--experimental-vm-modules` (USE_MAIN_CONTEXT_DEFAULT_LOADER) prints an
 * ExperimentalWarning on Node 22. So the loader rewrites that one call to a parameter holding
 * `node:module` itself, and no dynamic import happens at all (checked: the text must occur exactly
 * once, so a package upgrade that changes the glue fails loudly here rather than later).
 *
 * A fresh `compileFunction` gives a fresh wasm instance: xgrammar `abort()`s on some schemas
 * (`[FATAL] ... Aborted()`), after which its instance may be left inconsistent, so the grammar
 * engine discards the instance and loads another (engine.ts).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as nodeModule from 'node:module';
import { runInThisContext } from 'node:vm';
import type * as Xgrammar from '@mlc-ai/web-xgrammar';

/** The classes of the package (lib/xgrammar.d.ts). */
export type XgrammarModule = Pick<
  typeof Xgrammar,
  'TokenizerInfo' | 'GrammarCompiler' | 'GrammarMatcher' | 'Grammar' | 'CompiledGrammar' | 'StructuralTagItem'
>;

const require = createRequire(import.meta.url);
/** The Emscripten glue's one dynamic import, rewritten to a parameter (see the module comment). */
const DYNAMIC_IMPORT = "await import('module')";
const IMPORT_PARAM = '__edgectlNodeModule';

let source: { filename: string; text: string } | undefined;

function bundle(): { filename: string; text: string } {
  if (source) return source;
  const filename = require.resolve('@mlc-ai/web-xgrammar');
  const raw = readFileSync(filename, 'utf8');
  const at = raw.indexOf(DYNAMIC_IMPORT);
  if (at < 0 || raw.indexOf(DYNAMIC_IMPORT, at + 1) >= 0) {
    throw new Error(
      `${filename}: expected exactly one ${DYNAMIC_IMPORT} in @mlc-ai/web-xgrammar; the package changed, update src/inference/grammar/loader.ts`,
    );
  }
  source = { filename, text: raw.replace(DYNAMIC_IMPORT, `(${IMPORT_PARAM})`) };
  return source;
}

/**
 * A new, independent instance of xgrammar (its own wasm memory). What the wasm prints to stderr
 * (`[FATAL] <file>:<line>: <reason>` before an abort) is collected in `fatal` instead, so the
 * caller can put the reason in its error rather than on the server's stderr.
 */
export function loadXgrammar(fatal: string[] = []): XgrammarModule {
  const { filename, text } = bundle();
  // Wrapped like Node's CommonJS loader does; runInThisContext keeps the main context's globals.
  const wrapped = `(function (exports, module, require, __filename, __dirname, ${IMPORT_PARAM}, console) {${text}\n})`;
  const fn = runInThisContext(wrapped, { filename }) as (
    exports: object,
    module: { exports: object },
    req: NodeJS.Require,
    file: string,
    dir: string,
    nodeMod: typeof nodeModule,
    console: Pick<Console, 'log' | 'warn' | 'error' | 'info' | 'debug'>,
  ) => void;
  const collect = (...args: unknown[]): void => {
    fatal.push(args.map(String).join(' ').trim());
    if (fatal.length > 20) fatal.shift();
  };
  const quiet = { log: collect, warn: collect, error: collect, info: collect, debug: collect };
  const mod = { exports: {} as Record<string, unknown> };
  fn(mod.exports, mod, require, filename, filename.replace(/[/\\][^/\\]*$/, ''), nodeModule, quiet);
  const x = mod.exports as unknown as Partial<XgrammarModule>;
  if (!x.TokenizerInfo || !x.GrammarCompiler || !x.GrammarMatcher || !x.Grammar || !x.CompiledGrammar) {
    throw new Error(
      `${filename}: the bundle did not export TokenizerInfo, GrammarCompiler and GrammarMatcher`,
    );
  }
  return x as XgrammarModule;
}
