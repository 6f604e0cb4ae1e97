/**
 * Flags shared by several commands, defined once so their names and help read the same everywhere.
 */
import { Args, Flags } from '@oclif/core';

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
