/**
 * Text handling shared by build and query: the BM25 analyzer (lower-cased Unicode letter/digit runs,
 * a short English stop list, a light plural stemmer so "printers" finds "printer") and chunking of a
 * document into passages of at most `maxWords` words with `overlapWords` words of overlap, breaking
 * at paragraph ends where one falls in the window so passages stay readable for RAG.
 */
import type { Chunking } from './manifest.js';

const STOP = new Set(
  'a an and are as at be but by can do does for from has have how i if in is it its my no not of on or our so that the their then there these this to was we what when where which who why will with you your'.split(
    ' ',
  ),
);

function stem(t: string): string {
  if (t.length > 4 && t.endsWith('ies')) return `${t.slice(0, -3)}y`;
  if (t.length > 3 && t.endsWith('s') && !t.endsWith('ss') && !t.endsWith('us')) return t.slice(0, -1);
  return t;
}

/** BM25 terms of a text, in order (duplicates kept: term frequency matters). */
export function analyze(text: string): string[] {
  const out: string[] = [];
  for (const m of text.toLowerCase().matchAll(/[\p{L}\p{N}]+/gu)) {
    const t = m[0];
    if (!STOP.has(t)) out.push(stem(t));
  }
  return out;
}

/** Passages of a document's text (never empty: a document with no words yields no passage). */
export function chunkText(text: string, c: Chunking): string[] {
  const words: { w: string; para: boolean }[] = [];
  for (const para of text.split(/\n\s*\n/)) {
    const ws = para.split(/\s+/).filter((w) => w !== '');
    ws.forEach((w, i) => words.push({ w, para: i === ws.length - 1 }));
  }
  if (words.length === 0) return [];
  const out: string[] = [];
  let start = 0;
  while (start < words.length) {
    let end = Math.min(words.length, start + c.maxWords);
    if (end < words.length) {
      // Prefer a paragraph end in the second half of the window.
      for (let i = end - 1; i >= start + Math.floor(c.maxWords / 2); i--)
        if (words[i]?.para) {
          end = i + 1;
          break;
        }
    }
    // Paragraph breaks survive inside a passage, so RAG prompts keep the document's shape.
    out.push(
      words
        .slice(start, end)
        .map((x, i) => (i === end - start - 1 ? x.w : x.para ? `${x.w}\n\n` : `${x.w} `))
        .join(''),
    );
    if (end >= words.length) break;
    start = Math.max(end - c.overlapWords, start + 1);
  }
  return out;
}
