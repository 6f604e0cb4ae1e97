/**
 * Site declarations (docs/formats.md "Fleet log", docs/running-sites.md): the schema of `sites/<name>.yaml`, its normalized
 * form as it enters the fleet state; site-files.ts loads a whole sites directory against it. A declaration is strict (unknown fields are refused), its `name` must equal
 * the file name, and each assignment slot only takes refs of its kind (model, adapter, policy).
 *
 * The normalized declaration keeps only what the file says (no defaults filled in), so a change in
 * a default never shows up as a fleet change; `effectiveRuntime` applies the defaults for consumers.
 */
import { z } from 'zod';
import { decodeBase64, keyIdOf } from '../registry/keys.js';
import { parseDuration } from '../foundation/duration.js';
import { refIdentity, refProblem } from './refs.js';

export const SITE_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const LABEL_KEY_RE = /^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/;
const LABEL_VALUE_RE = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
const LISTEN_RE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/;

/** Runtime defaults, applied by consumers (the site daemon), never stored in the fleet state. */
export const RUNTIME_DEFAULTS = { listen: '127.0.0.1:8080', interval: '30s' } as const;

/**
 * The assignment slots of a site and the artifact kind each takes (`indexes`: retrieval indexes,
 * a set keyed by name like `adapters`). `shadow` (adapters a rollout's
 * shadow step runs beside the served ones, never serving) is only ever assigned by rollouts:
 * site declarations have no such field.
 */
export const SLOTS = ['model', 'adapters', 'policy', 'shadow', 'indexes'] as const;
export type Slot = (typeof SLOTS)[number];
export const SLOT_KIND = {
  model: 'model',
  adapters: 'adapter',
  policy: 'policy',
  shadow: 'adapter',
  indexes: 'index',
} as const satisfies Record<Slot, string>;

const siteName = z
  .string()
  .regex(SITE_NAME_RE, 'must be lower-case letters, digits and dashes (1-63 chars, DNS label style)');

const labels = z.record(
  z.string().regex(LABEL_KEY_RE, 'label keys are lower-case letters, digits and . _ / - (max 63)'),
  z
    .string({ error: 'label values must be strings (quote numbers: "1")' })
    .regex(LABEL_VALUE_RE, 'label values are letters, digits and . _ - (max 63)'),
);

const listen = z.string().refine(
  (v) => {
    const m = LISTEN_RE.exec(v);
    const port = m ? Number(m[2]) : 0;
    return port >= 1 && port <= 65535;
  },
  { message: 'must be host:port, e.g. 127.0.0.1:8080' },
);

const verifier = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL, e.g. https://verifier:9443' });

function isDuration(text: string): boolean {
  try {
    parseDuration(text);
    return true;
  } catch {
    return false;
  }
}

const interval = z.string().refine(isDuration, { message: 'must be a duration like 30s, 5m or 1h' });

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * `runtime.cloud`: an OpenAI-compatible server the site's cloud route uses instead of the verifier
 * (issue #18 item 5; docs/running-sites.md). The API key is named, never written: only the variable.
 */
const cloud = z
  .object({
    url: z.url({
      protocol: /^https?$/,
      error: 'must be an http(s) base URL, e.g. https://api.example.com/v1',
    }),
    model: z.string({ error: 'must be the model name the server knows' }).min(1, 'must not be empty'),
    apiKeyEnv: z
      .string({ error: 'must name the environment variable that holds the API key, e.g. CLOUD_API_KEY' })
      .regex(ENV_NAME_RE, 'must be an environment variable name (letters, digits, _), not the key itself')
      .optional(),
    api: z.enum(['completions', 'chat'], { error: 'must be completions or chat' }).optional(),
  })
  .strict();
export type SiteCloud = z.infer<typeof cloud>;

const runtime = z
  .object({
    listen: listen.optional(),
    verifier: verifier.optional(),
    interval: interval.optional(),
    cloud: cloud.optional(),
  })
  .strict();

const publicKeyObject = z.object({ keyid: z.string(), key: z.string() }).strict();

/** Checks a base64 Ed25519 public key and its key id; returns the problem or undefined. */
function publicKeyProblem(key: string, keyid?: string): { field: string; message: string } | undefined {
  const bytes = decodeBase64(key);
  if (!bytes || bytes.length !== 32) {
    return {
      field: keyid === undefined ? '' : 'key',
      message: 'must be a base64 Ed25519 public key (32 bytes)',
    };
  }
  const expected = keyIdOf(bytes);
  if (keyid !== undefined && keyid !== expected) {
    return { field: 'keyid', message: `does not match the key (expected ${expected})` };
  }
  return undefined;
}

const publicKey = z.union([z.string(), publicKeyObject]).superRefine((v, ctx) => {
  const p = typeof v === 'string' ? publicKeyProblem(v) : publicKeyProblem(v.key, v.keyid);
  if (p) ctx.addIssue({ code: 'custom', message: p.message, path: p.field ? [p.field] : [] });
});

function refIn(slot: Slot) {
  return z.string().superRefine((v, ctx) => {
    const problem = refProblem(v, SLOT_KIND[slot], slot);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}

/** `adapters:` / `indexes:` with nothing under it is YAML null: read it as an empty list. */
function refList(slot: 'adapters' | 'indexes') {
  return z
    .array(refIn(slot))
    .nullable()
    .default([])
    .transform((v) => v ?? []);
}

/** One version per `<kind>/<name>` in a list slot: a site runs one version of an adapter or index. */
function noDuplicates(list: string[], slot: 'adapters' | 'indexes', ctx: z.RefinementCtx): void {
  const label = SLOT_KIND[slot];
  const seen = new Map<string, number>();
  list.forEach((ref, i) => {
    const name = refIdentity(ref);
    const first = seen.get(name);
    if (first !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `${label} ${name} is listed twice (also at ${slot}.${first}); a site runs one version of an ${label}`,
        path: [slot, i],
      });
    } else seen.set(name, i);
  });
}

const assignments = z
  .object({
    model: refIn('model').optional(),
    adapters: refList('adapters'),
    policy: refIn('policy').optional(),
    indexes: refList('indexes'),
  })
  .strict()
  .superRefine((v, ctx) => {
    noDuplicates(v.adapters, 'adapters', ctx);
    noDuplicates(v.indexes, 'indexes', ctx);
  });

/** The YAML file as written (after validation). */
export const siteFileSchema = z
  .object({
    name: siteName,
    labels: labels.default({}),
    publicKey,
    runtime: runtime.default({}),
    assignments: assignments.default({ adapters: [], indexes: [] }),
  })
  .strict();
export type SiteFile = z.infer<typeof siteFileSchema>;

/** The normalized declaration carried by `site.put` ops and stored in the fleet state. */
export const siteDeclarationSchema = z
  .object({
    name: siteName,
    labels,
    publicKey: publicKeyObject.superRefine((v, ctx) => {
      const p = publicKeyProblem(v.key, v.keyid);
      if (p) ctx.addIssue({ code: 'custom', message: p.message, path: [p.field] });
    }),
    runtime,
  })
  .strict();
export type SiteDeclaration = z.infer<typeof siteDeclarationSchema>;

/**
 * The structure of a declaration without the semantic checks (key id matches the key, URL and
 * duration syntax). For snapshots: every declaration in one was fully checked when its `site.put`
 * entered the log, and re-checking 10,000 keys and URLs on every snapshot read is most of the read.
 */
export const siteDeclarationShape = z
  .object({
    name: siteName,
    labels: z.record(z.string(), z.string()),
    publicKey: publicKeyObject,
    runtime: z
      .object({
        listen: z.string().optional(),
        verifier: z.string().optional(),
        interval: z.string().optional(),
        cloud: z
          .object({
            url: z.string(),
            model: z.string(),
            apiKeyEnv: z.string().optional(),
            api: z.enum(['completions', 'chat']).optional(),
          })
          .strict()
          .optional(),
      })
      .strict(),
  })
  .strict();
export type SitePublicKey = SiteDeclaration['publicKey'];
export type SiteRuntime = SiteDeclaration['runtime'];

/** The assignments a declaration asks for, as refs (resolved to manifest digests by the planner). */
export interface DesiredAssignments {
  model?: string;
  adapters: string[];
  policy?: string;
  /** Index refs (absent or empty: none). */
  indexes?: string[];
}

/** One loaded `sites/<name>.yaml`. */
export interface DeclaredSite {
  /** Path as shown in messages (relative to the working directory when possible). */
  file: string;
  declaration: SiteDeclaration;
  assignments: DesiredAssignments;
  /** Line of a field path in the file, for errors found later (e.g. a ref missing from the registry). */
  lineOf(path: PropertyKey[]): number;
}

/** Normalizes a validated file into the declaration stored in the state (no undefined fields). */
export function toDeclaration(file: SiteFile): {
  declaration: SiteDeclaration;
  assignments: DesiredAssignments;
} {
  const pk =
    typeof file.publicKey === 'string'
      ? { keyid: keyIdOf(decodeBase64(file.publicKey) ?? Buffer.alloc(0)), key: file.publicKey }
      : { keyid: file.publicKey.keyid, key: file.publicKey.key };
  const rt: SiteRuntime = {};
  if (file.runtime.listen !== undefined) rt.listen = file.runtime.listen;
  if (file.runtime.verifier !== undefined) rt.verifier = file.runtime.verifier;
  if (file.runtime.interval !== undefined) rt.interval = file.runtime.interval;
  const c = file.runtime.cloud;
  if (c !== undefined) {
    rt.cloud = {
      url: c.url,
      model: c.model,
      ...(c.apiKeyEnv === undefined ? {} : { apiKeyEnv: c.apiKeyEnv }),
      ...(c.api === undefined ? {} : { api: c.api }),
    };
  }
  const desired: DesiredAssignments = { adapters: [...file.assignments.adapters] };
  if (file.assignments.indexes.length > 0) desired.indexes = [...file.assignments.indexes];
  if (file.assignments.model !== undefined) desired.model = file.assignments.model;
  if (file.assignments.policy !== undefined) desired.policy = file.assignments.policy;
  return {
    declaration: { name: file.name, labels: { ...file.labels }, publicKey: pk, runtime: rt },
    assignments: desired,
  };
}

/** Runtime settings with defaults applied: what a site daemon actually uses. */
export function effectiveRuntime(decl: SiteDeclaration): EffectiveRuntime {
  return {
    listen: decl.runtime.listen ?? RUNTIME_DEFAULTS.listen,
    interval: decl.runtime.interval ?? RUNTIME_DEFAULTS.interval,
    ...(decl.runtime.verifier !== undefined ? { verifier: decl.runtime.verifier } : {}),
    ...(decl.runtime.cloud !== undefined ? { cloud: decl.runtime.cloud } : {}),
  };
}

export interface EffectiveRuntime {
  listen: string;
  verifier?: string;
  interval: string;
  cloud?: SiteCloud;
}
