/**
 * The S3 conditional-write probe and the ETag forms `If-Match` may need. S3 returns ETags quoted
 * (`"9b2c…"`, multipart `"9b2c…-3"`); AWS accepts them back quoted or not, but Ceph RGW answers 412
 * to `If-Match` carrying the quoted ETag it returned itself and accepts the unquoted one. So the probe
 * finds the form the server accepts, and tests each condition from both sides on a scratch object:
 *
 *   1. create with `If-None-Match: *`             must be accepted
 *   2. create again with `If-None-Match: *`       must be refused
 *   3. `If-Match` with the current ETag           must be accepted (as returned, else unquoted)
 *   4. `If-Match` with the previous (stale) ETag  must be refused
 *
 * Every request is recorded with the server's answer (see ConditionalWriteProbeResult).
 */
import type {
  ConditionState,
  ConditionalWriteProbeResult,
  EtagForm,
  ProbeAnswer,
} from './conditional-writes.js';

export type WriteCondition = { IfNoneMatch: '*' } | { IfMatch: string } | Record<string, never>;

/** A PUT's outcome: accepted with the new ETag, or refused by its precondition (412/409). */
export type ConditionalPutOutcome =
  { accepted: true; status: number; etag: string } | { accepted: false; status: number };

/** Sends one PUT; throws for anything but acceptance or a precondition refusal. */
export type ConditionalPut = (body: Buffer, condition: WriteCondition) => Promise<ConditionalPutOutcome>;

/** The ETag without quotes or a weak-validator prefix: the form ETags are compared in. */
export function bareEtag(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

/** Same object version? ETags compare equal whether or not a server quoted them. */
export function sameEtag(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && b !== undefined && bareEtag(a) === bareEtag(b);
}

/** The `If-Match` value for an ETag in the given form. */
export function ifMatchValue(etag: string, form: EtagForm): string {
  return form === 'unquoted' ? bareEtag(etag) : etag;
}

/** Forms to try, in order: as returned, then unquoted when that differs. */
export function etagForms(etag: string): EtagForm[] {
  return bareEtag(etag) === etag ? ['as-returned'] : ['as-returned', 'unquoted'];
}

export async function runConditionalWriteProbe(put: ConditionalPut): Promise<ConditionalWriteProbeResult> {
  const answers: ProbeAnswer[] = [];
  let n = 0;
  const send = async (
    step: string,
    header: string,
    expected: 'accept' | 'refuse',
    condition: WriteCondition,
  ) => {
    const res = await put(Buffer.from(`edgectl conditional-write probe ${++n}\n`), condition);
    answers.push({
      step,
      header,
      expected,
      outcome: res.accepted ? 'accepted' : 'refused',
      status: res.status,
    });
    return res;
  };

  const created = await send('create a new object', 'If-None-Match: *', 'accept', { IfNoneMatch: '*' });
  // Without a created object there is nothing to compare against: write one unconditionally.
  const base = created.accepted ? created : await put(Buffer.from('edgectl conditional-write probe 0\n'), {});
  const again = await send('create an existing object', 'If-None-Match: *', 'refuse', { IfNoneMatch: '*' });
  const createOnly: ConditionState = !created.accepted
    ? 'broken'
    : again.accepted
      ? 'not-enforced'
      : 'enforced';

  const current = again.accepted ? again.etag : base.accepted ? base.etag : '';
  let form: EtagForm | null = null;
  for (const f of etagForms(current)) {
    const value = ifMatchValue(current, f);
    const res = await send(`replace with the current ETag (${f})`, `If-Match: ${value}`, 'accept', {
      IfMatch: value,
    });
    if (res.accepted) {
      form = f;
      break;
    }
  }
  // Each write has different bytes, so after an accepted replace `current` is stale: use it in the
  // form the server accepts (a made-up ETag when no form was accepted).
  const stale = form !== null ? ifMatchValue(current, form) : '"edgectl-probe-mismatch"';
  const wrong = await send('replace with a stale ETag', `If-Match: ${stale}`, 'refuse', { IfMatch: stale });
  const compareAndSwap: ConditionState =
    form === null ? 'broken' : wrong.accepted ? 'not-enforced' : 'enforced';
  return { createOnly, compareAndSwap, ifMatchForm: form, answers };
}
