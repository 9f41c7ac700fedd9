// Arguments, environment variables, file names and file contents are bytes, not always UTF-8.
// They travel through daemonize as strings in which every byte that is not part of valid UTF-8
// stands as one lone surrogate, U+DC80 to U+DCFF (Python's "surrogateescape"): valid text reads
// as itself, and every string turns back into exactly the bytes it came from.

const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// Not Buffer: its first use costs a third of a millisecond more than TextEncoder's and Uint8Array's.
const utf8 = new TextEncoder();

/** The length of the valid UTF-8 sequence at b[i], or 0 (the WHATWG rules: no overlongs, surrogates or values past U+10FFFF). */
function sequence(b: Uint8Array, i: number): number {
  const c = b[i] as number;
  if (c < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && (b[i + k] as number) >= lo && (b[i + k] as number) <= hi;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const ok = c === 0xe0 ? cont(1, 0xa0) : c === 0xed ? cont(1, 0x80, 0x9f) : cont(1);
    return ok && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const ok = c === 0xf0 ? cont(1, 0x90) : c === 0xf4 ? cont(1, 0x80, 0x8f) : cont(1);
    return ok && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

export function decode(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes);
  } catch {}
  let out = "";
  let start = 0;
  for (let i = 0; i < bytes.length; ) {
    const n = sequence(bytes, i);
    if (n) {
      i += n;
      continue;
    }
    out += strict.decode(bytes.subarray(start, i)) + String.fromCharCode(0xdc00 + (bytes[i] as number));
    start = ++i;
  }
  return out + strict.decode(bytes.subarray(start));
}

// A string that holds no lone surrogate holds no escaped byte. Asking the string, not a regular
// expression: the first regular expression a process runs costs a third of a millisecond.
export function encode(text: string): Uint8Array {
  if (text.isWellFormed()) return utf8.encode(text);
  const parts: Uint8Array[] = [];
  let run = "";
  for (const ch of text) {
    const c = ch.charCodeAt(0);
    if (ch.length === 1 && c >= 0xdc80 && c <= 0xdcff) {
      parts.push(utf8.encode(run), Uint8Array.of(c - 0xdc00));
      run = "";
    } else run += ch;
  }
  parts.push(utf8.encode(run));
  return concat(parts);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  let at = 0;
  for (const p of parts) at += p.length;
  const out = new Uint8Array(at);
  at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export const byteLength = (text: string): number => encode(text).length;

/**
 * For a message on one line: control characters (C0, DEL, C1), line and paragraph separators,
 * bidirectional overrides and bytes that are not UTF-8 become escapes, so that a name can
 * neither split a line nor disguise what follows it.
 */
export const printable = (text: string): string =>
  text.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\uDC80-\uDCFF]/gu, (ch) => {
    const c = ch.charCodeAt(0);
    if (c >= 0xdc80 && c <= 0xdcff) return `\\x${(c - 0xdc00).toString(16)}`;
    const json = JSON.stringify(ch).slice(1, -1);
    return json.length > 1 ? json : `\\u${c.toString(16).padStart(4, "0")}`;
  });
