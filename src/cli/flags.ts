/**
 * Flags shared by several commands, defined once so their names and help read the same everywhere.
 */
import { Args, Flags } from '@oclif/core';
import { parseDuration } from '../foundation/duration.js';

export const registryFlag = Flags.string({
  summary: 'Registry URL: file:<dir> or s3://<bucket>/<prefix>.',
  description:
    'Overrides EDGECTL_REGISTRY and edgectl.yaml. S3 endpoint, region and credentials come from the standard AWS configuration (AWS_ENDPOINT_URL_S3, AWS_REGION, profiles).',
  helpValue: '<url>',
});

export const trustFlag = Flags.string({
  summary: 'Path of the trust root (default: trust/root.json of the project, or edgectl.yaml).',
  helpValue: '<path>',
});

/** `index query|update <site>`: which of the site's indexes. */
export const siteIndexFlag = Flags.string({
  summary: "Which of a site's indexes (when it serves several).",
  helpValue: '<name>',
});

export const keyFlag = Flags.string({
  summary: 'Secret key file (mode 0600). EDGECTL_SIGNING_KEY may hold the key instead.',
  helpValue: '<path>',
});

export const singleWriterFlag = Flags.boolean({
  summary: 'On a registry without conditional writes, take the lease fleet/lease.json instead of refusing.',
  description:
    'Fleet writes on a store that does not enforce If-None-Match/If-Match are refused by default. With this flag ' +
    '(or singleWriter: true in edgectl.yaml) each write takes a lease with an owner and expiry so two edgectl writers ' +
    'cannot both act; it relies on the operator (see docs/operations.md). No effect on stores that enforce them.',
  default: false,
});

export const siteDataDirFlag = Flags.string({
  summary: "The site's data directory (default .edgectl/sites/<name> under the project root).",
  helpValue: '<dir>',
});

export const siteNameArg = Args.string({ required: true, description: 'Site name.' });

/**
 * A duration flag (`90s`, `30m`, `1d12h`; src/foundation/duration.ts): its value is milliseconds, so
 * no command parses durations itself. The default is given as text, shown as such in the help and
 * parsed like a typed value; `allowZero` also accepts `0` (off). An invalid value exits 2 with the
 * same message as before: `invalid --<name> "<text>"` (the base command strips oclif's wrapping).
 */
export function durationFlag(opts: {
  summary: string;
  description?: string;
  default?: string;
  allowZero?: boolean;
  /** The value's placeholder in the help (`<duration>`); `false` for none. */
  helpValue?: string | false;
}) {
  const parse = (text: string, name: string): number =>
    opts.allowZero && text.trim() === '0' ? 0 : parseDuration(text, `--${name}`);
  const base = {
    summary: opts.summary,
    ...(opts.description ? { description: opts.description } : {}),
    ...(opts.helpValue === false ? {} : { helpValue: opts.helpValue ?? '<duration>' }),
    parse: async (text: string, _ctx: unknown, flag: { name: string }) => parse(text, flag.name),
  };
  const text = opts.default;
  if (text === undefined) return Flags.custom<number>(base)();
  return Flags.custom<number>({
    ...base,
    default: async (ctx: { options: { name: string } }) => parse(text, ctx.options.name),
    defaultHelp: async () => text,
  })();
}
