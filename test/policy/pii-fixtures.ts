/**
 * Generated PII for the redaction tests: a seeded generator of varied, VALID values of every type
 * (Luhn-valid cards of several networks and layouts, checksum-valid IBANs of several countries,
 * emails, phone numbers valid per libphonenumber in international and national formats, IPv4 and
 * IPv6 addresses, SSNs outside the never-issued ranges, UK NI numbers, labelled passport numbers),
 * embedded in support-style sentences; and negative cases that must NOT be redacted.
 */
import { composeIBAN, isValidIBAN } from 'ibantools';
import {
  getExampleNumber,
  isValidPhoneNumber,
  parsePhoneNumberFromString,
  type CountryCode,
} from 'libphonenumber-js/max';
import examples from 'libphonenumber-js/examples.mobile.json' with { type: 'json' };
import { luhnValid } from '../../src/policy/pii.js';

export type Rng = () => number;

export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)]!;
const int = (rng: Rng, lo: number, hi: number) => lo + Math.floor(rng() * (hi - lo + 1));
const digits = (rng: Rng, n: number) => Array.from({ length: n }, () => String(int(rng, 0, 9))).join('');

export interface PiiSample {
  type: 'email' | 'phone' | 'card' | 'iban' | 'ip' | 'national_id';
  value: string;
}

function luhnComplete(prefix: string, length: number, rng: Rng): string {
  const body = prefix + digits(rng, length - prefix.length - 1);
  for (let d = 0; d <= 9; d++) if (luhnValid(body + d)) return body + d;
  throw new Error('unreachable');
}

const CARD_NETWORKS: { prefix: (rng: Rng) => string; length: number; layout: number[] }[] = [
  { prefix: () => '4', length: 16, layout: [4, 4, 4, 4] }, // Visa
  { prefix: () => '4', length: 13, layout: [4, 4, 4, 1] }, // old Visa
  { prefix: (r) => String(int(r, 51, 55)), length: 16, layout: [4, 4, 4, 4] }, // Mastercard
  { prefix: () => '2221', length: 16, layout: [4, 4, 4, 4] }, // Mastercard 2-series
  { prefix: () => '37', length: 15, layout: [4, 6, 5] }, // Amex
  { prefix: () => '6011', length: 16, layout: [4, 4, 4, 4] }, // Discover
  { prefix: () => '3530', length: 16, layout: [4, 4, 4, 4] }, // JCB
  { prefix: () => '36', length: 14, layout: [4, 6, 4] }, // Diners
  { prefix: () => '62', length: 19, layout: [4, 4, 4, 4, 3] }, // UnionPay
];

export function card(rng: Rng): string {
  const net = pick(rng, CARD_NETWORKS);
  const number = luhnComplete(net.prefix(rng), net.length, rng);
  const sep = pick(rng, [' ', '-', '']);
  if (sep === '') return number;
  const groups: string[] = [];
  let at = 0;
  for (const len of net.layout) {
    groups.push(number.slice(at, at + len));
    at += len;
  }
  return groups.join(sep);
}

const IBAN_BBANS: Record<string, (rng: Rng) => string> = {
  DE: (r) => digits(r, 18),
  GB: (r) => `${pick(r, ['NWBK', 'BARC', 'LOYD', 'MIDL'])}${digits(r, 14)}`,
  NL: (r) => `${pick(r, ['ABNA', 'INGB', 'RABO'])}${digits(r, 10)}`,
  CH: (r) => digits(r, 17),
  AT: (r) => digits(r, 16),
  PL: (r) => digits(r, 24),
  SE: (r) => digits(r, 20),
  IE: (r) => `${pick(r, ['AIBK', 'BOFI'])}${digits(r, 14)}`,
  DK: (r) => digits(r, 14),
  LU: (r) => digits(r, 16),
};

export function iban(rng: Rng): string {
  for (;;) {
    const countryCode = pick(rng, Object.keys(IBAN_BBANS));
    const value = composeIBAN({ countryCode, bban: IBAN_BBANS[countryCode]!(rng) });
    if (!value || !isValidIBAN(value)) continue; // a national check digit failed: draw again
    return rng() < 0.5 ? value : value.replace(/(.{4})(?=.)/g, '$1 ');
  }
}

const EMAIL_USERS = ['john.doe', 'maria_garcia', 'li.wei+support', 'a.b-c', 'kofi1987', 'o.brien', 'zoe'];
const EMAIL_DOMAINS = [
  'example.com',
  'mail.example.co.uk',
  'corp-mail.example.org',
  'uni.example.edu',
  'x.io',
];

export function email(rng: Rng): string {
  return `${pick(rng, EMAIL_USERS)}${rng() < 0.5 ? int(rng, 1, 999) : ''}@${pick(rng, EMAIL_DOMAINS)}`;
}

const PHONE_COUNTRIES: CountryCode[] = [
  'US',
  'GB',
  'DE',
  'FR',
  'NL',
  'ES',
  'IT',
  'AU',
  'JP',
  'IN',
  'CH',
  'SE',
  'BR',
  'CA',
];

export function phone(rng: Rng): string {
  for (;;) {
    const country = pick(rng, PHONE_COUNTRIES);
    const example = getExampleNumber(country, examples);
    if (!example) continue;
    const national = example.nationalNumber as string;
    const tail = Math.min(4, national.length - 3);
    const varied = national.slice(0, national.length - tail) + digits(rng, tail);
    const parsed = parsePhoneNumberFromString(`+${example.countryCallingCode}${varied}`);
    if (!parsed?.isValid()) continue;
    // International form for every country; national form where it is one the detector knows
    // (North American, or trunk-prefixed with a `0` in the default regions).
    const nationalForm = parsed.formatNational();
    const useNational =
      rng() < 0.5 &&
      (country === 'US' || country === 'CA' || (/^0/.test(nationalForm) && country !== 'BR')) &&
      /[ -]/.test(nationalForm);
    const value = useNational ? nationalForm : parsed.formatInternational();
    if (!isValidPhoneNumber(value, country)) continue;
    return value;
  }
}

export function ip(rng: Rng): string {
  const kind = int(rng, 0, 2);
  if (kind === 0) return [int(rng, 1, 223), int(rng, 0, 255), int(rng, 0, 255), int(rng, 1, 254)].join('.');
  const hex = () => int(rng, 0, 0xffff).toString(16);
  if (kind === 1) return Array.from({ length: 8 }, hex).join(':');
  return `2001:db8:${hex()}::${hex()}:${hex()}`;
}

const NINO_FIRST = 'ABCEGHJKLMNPRSTWXYZ';
const NINO_SECOND = 'ABCEGHJKLMNPRSTWXYZ';

export function nationalId(rng: Rng): string {
  const kind = int(rng, 0, 2);
  if (kind === 0) {
    const area = String(pick(rng, [int(rng, 1, 665), int(rng, 667, 899)])).padStart(3, '0');
    const group = String(int(rng, 1, 99)).padStart(2, '0');
    const serial = String(int(rng, 1, 9999)).padStart(4, '0');
    return `${area}${pick(rng, ['-', ' '])}${group}${pick(rng, ['-', ' '])}${serial}`.replace(
      /^(\d{3})([- ])(\d{2})[- ]/,
      '$1$2$3$2',
    );
  }
  if (kind === 1) {
    let prefix: string;
    do prefix = pick(rng, [...NINO_FIRST]) + pick(rng, [...NINO_SECOND]);
    while (['BG', 'GB', 'NK', 'KN', 'TN', 'NT', 'ZZ'].includes(prefix));
    const d = digits(rng, 6);
    const suffix = pick(rng, ['A', 'B', 'C', 'D']);
    return rng() < 0.5
      ? `${prefix}${d}${suffix}`
      : `${prefix} ${d.slice(0, 2)} ${d.slice(2, 4)} ${d.slice(4)} ${suffix}`;
  }
  return `${pick(rng, ['X', 'C', 'P', 'L'])}${digits(rng, 8)}`;
}

const TEMPLATES: Record<PiiSample['type'], string[]> = {
  email: [
    'Hi, please send the invoice to {v} instead of my old address.',
    'My login is {v} and I cannot reset the password.',
    'Contact: {v}. Thanks!',
    '({v}) is where the refund confirmation should go',
  ],
  phone: [
    'You can reach me on {v} after 5pm.',
    'Call me back at {v}, it is about ticket 4471.',
    'My number changed to {v}; please update the account.',
    'Phone: {v}',
  ],
  card: [
    'I was charged twice on my card {v} yesterday.',
    'Card number: {v}, expiry 12/27.',
    'Please refund to {v} rather than store credit.',
    'The payment with {v} failed at checkout.',
  ],
  iban: [
    'Please wire the refund to {v}.',
    'My IBAN is {v}, account holder Jane Roe.',
    'Bank account: {v} (savings).',
    'I changed my bank details to {v} last week.',
  ],
  ip: [
    'The dashboard blocks me when I connect from {v}.',
    'Our office egress address is {v}, please allowlist it.',
    'Login attempts came from {v} at 03:14.',
    'Server {v} returns a 502.',
  ],
  national_id: [
    'For the tax form, my SSN is {v}.',
    'Verification: national insurance number {v}.',
    'My passport number is {v}, issued in 2019.',
    'National ID number: {v} (please keep it private).',
  ],
};

const GENERATORS: Record<PiiSample['type'], (rng: Rng) => string> = {
  email,
  phone,
  card,
  iban,
  ip,
  national_id: nationalId,
};

export interface PiiSentence {
  text: string;
  samples: PiiSample[];
}

/** `perType` sentences per PII type, each embedding one value; every fourth holds a second value. */
export function generateSentences(seed: number, perType: number): PiiSentence[] {
  const rng = mulberry32(seed);
  const types = Object.keys(GENERATORS) as PiiSample['type'][];
  const out: PiiSentence[] = [];
  for (const type of types) {
    for (let i = 0; i < perType; i++) {
      const value = GENERATORS[type](rng);
      let text = pick(rng, TEMPLATES[type]).replace('{v}', value);
      const samples: PiiSample[] = [{ type, value }];
      if (i % 4 === 3) {
        const other = pick(rng, types);
        const v2 = GENERATORS[other](rng);
        text += ` ${pick(rng, TEMPLATES[other]).replace('{v}', v2)}`;
        samples.push({ type: other, value: v2 });
      }
      out.push({ text, samples });
    }
  }
  return out;
}

/** Sentences with number-like text that is NOT PII; redaction must leave them unchanged. */
export const NEGATIVE_CASES: string[] = [
  'My order number is 4111111111111112 and it has not shipped.', // 16 digits, Luhn-invalid
  'Reference 5500 0000 0000 0005 from the old system.', // Luhn-invalid, card layout
  'Order #48213377 was delivered to the wrong door.',
  'Order ID #48213377 and customer id number 5512345 are on the invoice.',
  'Order 20240115884214 arrived damaged.', // long order number, Luhn-invalid
  'Order ORD-2024-118833 is late.',
  'Invoice INV-20240115-0042 totals $1,299.99 including VAT.',
  'The price went from €49.90 to 1.299,00 EUR overnight.',
  'It was delivered on 2024-01-15 at 10:30:00.',
  'We met on 15.01.2024 and again on 01/02/2024.',
  'Renewal date: 01-02-2024 for 10 seats.',
  'Upgrade from v1.2.3 to version 2.10.4 fixed it.',
  'Order 123456789 and order 987654321 both failed.', // bare digit runs are not phones
  'My tracking code is 1Z999AA10123456784.',
  'The box holds 3 x 250 ml bottles and weighs 1.25 kg.',
  'Call center hours are 9-17, ticket 2024-0042-17.',
  'Quantity 4111 1111, batch 1111 1111.', // card-like digits but two short runs
  'Section 12.4.1.7.3 of the manual covers this.', // a dotted number that is not an IP
  'The std::vector in our SDK crashes; see error 0x80070005.',
  'Employee count grew to 12,345,678 last year.',
  'The ratio was 3:2:1 and the time 12:30.',
];
