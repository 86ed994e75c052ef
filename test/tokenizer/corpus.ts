/** Seeded, varied test strings for the tokenizer: every script, whitespace shape and emoji form GPT-2 must handle. */
import { Rng } from '../../src/util/rng.ts';

type Gen = (rng: Rng) => string;

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];
const between = (rng: Rng, lo: number, hi: number): number => lo + rng.int(hi - lo + 1);
const repeat = (rng: Rng, lo: number, hi: number, gen: () => string, sep = ''): string =>
  Array.from({ length: between(rng, lo, hi) }, gen).join(sep);
const codePointIn = (rng: Rng, ranges: readonly (readonly [number, number])[]): string => {
  const [lo, hi] = pick(rng, ranges);
  return String.fromCodePoint(between(rng, lo, hi));
};

const WORDS = [
  'the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'language', 'model', 'memory', 'gate', 'state',
  'hello', 'world', 'token', 'stream', 'Alice', 'Bob', 'Paris', 'NASA', 'iPhone', 'xLSTM', 'GraphQL', 'a', 'I',
  "don't", "it's", "we're", "they've", "I'm", "you'll", "he'd", "DON'T", "IT'S", "O'Brien", 'rock-n-roll', 'e-mail',
];
const ACCENTED = [
  'café', 'naïve', 'résumé', 'Zürich', 'São Paulo', 'Ångström', 'façade', 'mañana', 'Đà Nẵng', 'Tiếng Việt',
  'e\u0301', 'n\u0303o', 'Ωμέγα', 'αβγ', 'привет', 'Ёлка', 'مرحبا', 'שָׁלוֹם', 'नमस्ते', 'สวัสดี', 'ქართული', 'Łódź',
  'İstanbul', 'straße', 'ﬁnance', 'ǅ', 'Ǆ',
];
const LATIN_RANGES = [[0xc0, 0xff], [0x100, 0x17f], [0x180, 0x24f], [0x1e00, 0x1eff], [0x300, 0x36f]] as const;
const CJK_RANGES = [
  [0x4e00, 0x9fff], [0x3040, 0x309f], [0x30a0, 0x30ff], [0xac00, 0xd7a3], [0x20000, 0x2a6df], [0x3000, 0x303f],
  [0xff01, 0xff5e],
] as const;
const EMOJI_RANGES = [[0x1f300, 0x1f5ff], [0x1f600, 0x1f64f], [0x1f680, 0x1f6ff], [0x1f900, 0x1f9ff], [0x1fa70, 0x1faff]] as const;
const PEOPLE = ['\u{1F468}', '\u{1F469}', '\u{1F467}', '\u{1F466}', '\u{1F9D1}'];
const ZWJ = '\u200d';
const WHITESPACE = [' ', ' ', ' ', '\t', '\n', '\n', '\r\n', '\r', '\v', '\f', '\u00a0', '\u3000', '\u2028', '\u2029', '\u0085', '\u200b', '\ufeff'];
const PUNCT = [...'!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~', ...'“”‘’«»—–…¡¿·•†‡§¶©®™°±×÷‰′″‹›⟨⟩、。「」【】！？'];
const IDENTS = ['x', 'y', 'i', 'n', 'count', 'total', 'userId', 'get_value', 'MAX_LEN', '_tmp', 'self', 'this', 'ctx'];

function emoji(rng: Rng): string {
  switch (rng.int(8)) {
    case 0: // ZWJ family
      return repeat(rng, 2, 4, () => pick(rng, PEOPLE), ZWJ);
    case 1: // skin tone modifier
      return pick(rng, ['\u{1F44D}', '\u{1F44B}', '\u{1F9D1}', '\u{1F469}']) + String.fromCodePoint(between(rng, 0x1f3fb, 0x1f3ff));
    case 2: // flag: two regional indicators
      return String.fromCodePoint(between(rng, 0x1f1e6, 0x1f1ff), between(rng, 0x1f1e6, 0x1f1ff));
    case 3: // keycap
      return `${pick(rng, [...'0123456789#*'])}\ufe0f\u20e3`;
    case 4: // profession and rainbow flag (ZWJ with variation selectors)
      return pick(rng, ['\u{1F469}\u200d\u{1F4BB}', '\u{1F3F3}\ufe0f\u200d\u{1F308}', '\u{1F9D1}\u{1F3FD}\u200d\u{1F680}', '\u2764\ufe0f\u200d\u{1F525}']);
    case 5: // subdivision flag (tag sequence): England
      return '\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}';
    case 6: // BMP symbol with emoji presentation
      return String.fromCodePoint(between(rng, 0x2600, 0x26ff)) + (rng.int(2) ? '\ufe0f' : '');
    default:
      return codePointIn(rng, EMOJI_RANGES);
  }
}

function number(rng: Rng): string {
  const digits = (lo: number, hi: number) => repeat(rng, lo, hi, () => String(rng.int(10)));
  switch (rng.int(8)) {
    case 0:
      return digits(1, 20);
    case 1:
      return `${rng.int(2) ? '-' : ''}${digits(1, 6)}.${digits(1, 6)}`;
    case 2:
      return `${digits(1, 3)},${digits(3, 3)},${digits(3, 3)}`;
    case 3:
      return `${digits(1, 2)}.${digits(1, 3)}e${pick(rng, ['-', '+', ''])}${digits(1, 3)}`;
    case 4:
      return `${digits(4, 4)}-${digits(2, 2)}-${digits(2, 2)}T${digits(2, 2)}:${digits(2, 2)}`;
    case 5: // Arabic-Indic and fullwidth digits
      return repeat(rng, 1, 8, () => String.fromCodePoint(pick(rng, [0x660, 0xff10, 0x966]) + rng.int(10)));
    case 6: // other \p{N}: superscripts, fractions, roman numerals
      return repeat(rng, 1, 4, () => pick(rng, ['²', '³', '¹', '½', '¾', 'Ⅻ', 'ⅷ', '①', '⁴']));
    default:
      return `+${digits(1, 3)} (${digits(3, 3)}) ${digits(3, 3)}-${digits(4, 4)}`;
  }
}

function code(rng: Rng): string {
  const id = () => pick(rng, IDENTS);
  const indent = pick(rng, ['  ', '    ', '\t', '']);
  const templates = [
    () => `function ${id()}(${id()}, ${id()}) {\n${indent}return ${id()} * ${number(rng)};\n}\n`,
    () => `def ${id()}(${id()}):\n${indent}if ${id()} >= ${rng.int(100)}:\n${indent}${indent}return [${id()} for ${id()} in range(${rng.int(9)})]\n`,
    () => `for (int ${id()} = 0; ${id()} < ${rng.int(1000)}; ++${id()}) { ${id()} += ${id()}[${id()}]; }`,
    () => `<div class="${id()}">${pick(rng, WORDS)} &amp; ${pick(rng, WORDS)}</div>`,
    () => `{"${id()}": [${rng.int(9)}, ${number(rng)}, null], "${id()}": {"ok": true}}`,
    () => `$ ls -la ~/${id()} | grep -v '^d' && echo "$${id().toUpperCase()}" >> /tmp/${id()}.log`,
    () => `const ${id()} = ${id()}?.${id()} ?? await fetch(\`/api/\${${id()}}\`);\n`,
    () => `#include <stdio.h>\n\nint main(void) {\n${indent}printf("%d\\n", ${rng.int(42)});\n}\n`,
  ];
  return repeat(rng, 1, 3, () => pick(rng, templates)());
}

const GENERATORS: readonly Gen[] = [
  // ASCII prose
  (rng) => repeat(rng, 1, 25, () => pick(rng, WORDS) + (rng.int(6) === 0 ? pick(rng, [',', '.', '!', '?', ';', ':']) : ''), ' '),
  // accents, other alphabets, combining marks
  (rng) =>
    repeat(rng, 1, 12, () => (rng.int(3) ? pick(rng, ACCENTED) : repeat(rng, 1, 6, () => codePointIn(rng, LATIN_RANGES))), pick(rng, [' ', ', ', ' - '])),
  // CJK, kana, hangul, CJK extension B (astral), CJK punctuation, fullwidth forms
  (rng) => repeat(rng, 1, 30, () => (rng.int(8) ? codePointIn(rng, CJK_RANGES) : pick(rng, [' ', 'AI', '、', '。', '2024']))),
  // emoji of every form, alone or in text
  (rng) => repeat(rng, 1, 8, () => (rng.int(3) ? emoji(rng) : pick(rng, WORDS)), pick(rng, ['', ' ', '  ', '\n'])),
  // whitespace runs
  (rng) => repeat(rng, 1, 6, () => (rng.int(2) ? repeat(rng, 1, 12, () => pick(rng, WHITESPACE)) : pick(rng, WORDS))),
  // digits and numbers
  (rng) => repeat(rng, 1, 8, () => number(rng), pick(rng, [' ', '', ', ', '\n', ' + '])),
  // code snippets
  code,
  // punctuation runs
  (rng) => repeat(rng, 1, 10, () => repeat(rng, 1, 6, () => pick(rng, PUNCT)), pick(rng, ['', ' ', ' x '])),
  // control characters and unusual code points
  (rng) =>
    repeat(rng, 1, 12, () => String.fromCodePoint(pick(rng, [rng.int(0x20), 0x7f, 0x80 + rng.int(0x20), 0xe000 + rng.int(0x100), 0xfffe, 0xffff, 0x10ffff, 0xad, 0x2060]))),
  // special-token strings and near misses, inside text
  (rng) => repeat(rng, 1, 6, () => pick(rng, ['<|endoftext|>', '<|pad|>', '<|endof', 'text|>', '<|', ' <|endoftext|> ', '\n<|endoftext|>\n', pick(rng, WORDS), ' '])),
  // random scalar values from all of Unicode (no surrogates, no U+FFFD)
  (rng) =>
    repeat(rng, 1, 20, () => {
      let cp = rng.int(0x110000);
      while ((cp >= 0xd800 && cp <= 0xdfff) || cp === 0xfffd) cp = rng.int(0x110000);
      return String.fromCodePoint(cp);
    }),
];

// Mixtures draw fragments from every other generator.
const mixture: Gen = (rng) => repeat(rng, 2, 6, () => pick(rng, GENERATORS)(rng));

/** Hand-picked cases where GPT-2's split pattern or BPE tend to go wrong. */
export const EDGE_CASES: readonly string[] = [
  '', ' ', '  ', '\n', '\n\n', '\t', ' \n ', 'a', ' a', 'a ', "'s", "'S", " 's", "'ll've", "can't've", "''", 'x\'s\'t',
  'Hello world', ' Hello  world ', '   leading', 'trailing   ', 'a\u00a0b', '\u3000', '\ufeff', '\ufeffstart', '\u0000',
  '\u0085', '<|endoftext|>', '<|endoftext|><|endoftext|>', 'a<|endoftext|>b', ' <|endoftext|>', '<|pad|>',
  '<|pad|><|endoftext|><|pad|>', '<|endoftext', '<<|endoftext|>>', 'a'.repeat(300), ' '.repeat(200),
  '\n'.repeat(64), '9'.repeat(100), '🤗', ' 🤗', '🤗🤗🤗', '👨‍👩‍👧‍👦', '🇯🇵🇫🇷', '1️⃣', 'e\u0301', '日本語テキスト',
  '\u{20000}\u{2A6DF}', '\u{10FFFF}', 'ﬀ', 'ǅungla', 'Ⅻ²½', '٠١٢', '\r\n\r\n', 'if x:\n    return y\n',
];

/** EDGE_CASES followed by `count` generated strings, the same for a given seed. */
export function tokenizerCorpus(seed: number, count: number): string[] {
  const rng = new Rng(seed);
  const all = [...GENERATORS, mixture, mixture];
  const strings = [...EDGE_CASES];
  for (let i = 0; i < count; i++) strings.push(all[i % all.length](rng));
  return strings;
}
