// Tokenizer and Python-string details by hand (the sacreBLEU fixtures test them in bulk): 13a's rules, intl's
// Unicode classes, char's code points, Python's whitespace set and ties-to-even formatting.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bleuTokenizer, formatFixed, tokenize13a, tokenizeChar, tokenizeIntl } from '../../../../shared/scoring/index.js';
import { pyRstrip, pySplit, removeWhitespace } from '../../../../shared/scoring/text.js';
import { edgeFixture } from './fixtures.js';

describe('13a', () => {
  const cases: Array<[string, string]> = [
    ['Hello, world.', 'Hello , world .'],
    ['3.5 and 1,000 but a.b and x,y', '3.5 and 1,000 but a . b and x , y'],
    ['a-b 3-4', 'a-b 3 - 4'],
    ['&quot;x&quot; &amp; &lt;y&gt;', '" x " & < y >'],
    ['<skipped>ok (fine)', 'ok ( fine )'],
    ['end 1999.', 'end 1999 .'],
    ["don't", "don't"],
  ];
  for (const [input, want] of cases) it(JSON.stringify(input), () => assert.equal(tokenize13a(input), want));
});

describe('intl', () => {
  const cases: Array<[string, string]> = [
    ['« Bonjour », dit-il', '« Bonjour » , dit - il'],
    ['1,000.5 €', '1,000.5 €'],
    ['¿Qué? ¡Sí!', '¿ Qué ? ¡ Sí !'],
    // mteval-v14's quirk kept by sacreBLEU: a number's final period stays attached at the end of the line.
    ['in 1999.', 'in 1999.'],
    ['a+b', 'a + b'],
  ];
  for (const [input, want] of cases) it(JSON.stringify(input), () => assert.equal(tokenizeIntl(input), want));
});

describe('char and the tokenizer table', () => {
  it('char splits code points, keeping a surrogate pair whole', () => assert.equal(tokenizeChar('😀x y'), '😀 x   y'));
  it('none leaves the line alone', () => assert.equal(bleuTokenizer('none')('a,b.'), 'a,b.'));
});

describe('Python string semantics', () => {
  it('split(): U+001C–U+001F and U+0085 are whitespace, U+FEFF is not', () => {
    assert.deepEqual(pySplit(' a\x1cb\x85c\u00a0d\ufeffe\t'), ['a', 'b', 'c', 'd\ufeffe']);
    assert.equal(pyRstrip('x \u3000\r'), 'x');
    assert.equal(removeWhitespace(' a b\u2003c '), 'abc');
  });
  it('formatFixed matches Python f"{x:.Nf}" on every fixture value (ties to even on the binary value)', () => {
    const f = edgeFixture().format;
    assert.ok(f.length > 0);
    for (const { value, width, text } of f) assert.equal(formatFixed(value, width), text, `${value} at width ${width}`);
  });
  it('ties by hand: 0.25 → 0.2, 0.75 → 0.8, 2.5 → 2 (JS toFixed gives 0.3, 0.8, 3)', () => {
    assert.equal(formatFixed(0.25, 1), '0.2');
    assert.equal(formatFixed(0.75, 1), '0.8');
    assert.equal(formatFixed(2.5, 0), '2');
    assert.equal(formatFixed(0.35, 1), '0.3'); // 0.35 is 0.34999… in binary: no tie
  });
});
