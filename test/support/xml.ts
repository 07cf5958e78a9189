/**
 * A small strict XML 1.0 reader: elements, attributes, text, the five
 * predefined entities and character references. No DTDs, CDATA or PIs other
 * than the declaration (the renderer emits none of them).
 * Malformed input throws instead of being repaired, as a browser or a lenient
 * parser would; what CI systems read must be well-formed.
 */
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const NAME = /[A-Za-z_:][A-Za-z0-9_:.-]*/y;
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

export function isXmlChar(code: number): boolean {
  return (
    code === 0x9 ||
    code === 0xa ||
    code === 0xd ||
    (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    (code >= 0x10000 && code <= 0x10ffff)
  );
}

export function parseXml(xml: string): XmlElement {
  for (const char of xml) {
    if (!isXmlChar(char.codePointAt(0)!)) {
      throw new Error(`character U+${char.codePointAt(0)!.toString(16)} is not allowed in XML`);
    }
  }
  // XML readers normalise line ends before parsing.
  const input = xml.replace(/\r\n?/g, '\n');
  let pos = 0;
  const fail = (why: string): never => {
    throw new Error(`${why} at offset ${pos}: ${JSON.stringify(input.slice(pos, pos + 30))}`);
  };
  const skipSpace = () => {
    while (pos < input.length && /[ \t\n]/.test(input[pos]!)) pos++;
  };
  const expect = (literal: string) => {
    if (!input.startsWith(literal, pos)) fail(`expected ${JSON.stringify(literal)}`);
    pos += literal.length;
  };
  const name = (): string => {
    NAME.lastIndex = pos;
    const match = NAME.exec(input);
    if (!match) return fail('expected a name');
    pos += match[0].length;
    return match[0];
  };
  const reference = (): string => {
    expect('&');
    const end = input.indexOf(';', pos);
    if (end === -1) fail('unterminated reference');
    const body = input.slice(pos, end);
    pos = end + 1;
    let code: number | undefined;
    if (/^#x[0-9A-Fa-f]+$/.test(body)) code = parseInt(body.slice(2), 16);
    else if (/^#[0-9]+$/.test(body)) code = parseInt(body.slice(1), 10);
    else if (Object.hasOwn(ENTITIES, body)) return ENTITIES[body]!;
    else fail(`unknown entity &${body};`);
    if (!isXmlChar(code!)) fail(`character reference &${body}; names a character XML does not allow`);
    return String.fromCodePoint(code!);
  };
  const attributeValue = (): string => {
    const quote = input[pos];
    if (quote !== '"' && quote !== "'") return fail('expected a quoted attribute value');
    pos++;
    let value = '';
    while (input[pos] !== quote) {
      if (pos >= input.length) fail('unterminated attribute value');
      const char = input[pos]!;
      if (char === '<') fail("'<' in an attribute value");
      if (char === '&') value += reference();
      else {
        // Attribute-value normalisation: literal white space becomes a space.
        value += /[\t\n]/.test(char) ? ' ' : char;
        pos++;
      }
    }
    pos++;
    return value;
  };
  const element = (): XmlElement => {
    expect('<');
    const tag = name();
    const attributes: Record<string, string> = {};
    for (;;) {
      const before = pos;
      skipSpace();
      if (input.startsWith('/>', pos)) {
        pos += 2;
        return { name: tag, attributes, children: [], text: '' };
      }
      if (input[pos] === '>') {
        pos++;
        break;
      }
      if (pos === before) fail('expected white space before an attribute');
      const attribute = name();
      if (Object.hasOwn(attributes, attribute)) fail(`duplicate attribute ${attribute}`);
      skipSpace();
      expect('=');
      skipSpace();
      attributes[attribute] = attributeValue();
    }
    const children: XmlElement[] = [];
    let text = '';
    for (;;) {
      if (pos >= input.length) fail(`unclosed <${tag}>`);
      if (input.startsWith('</', pos)) {
        pos += 2;
        if (name() !== tag) fail(`mismatched end tag for <${tag}>`);
        skipSpace();
        expect('>');
        return { name: tag, attributes, children, text };
      }
      const char = input[pos]!;
      if (char === '<') children.push(element());
      else if (char === '&') text += reference();
      else {
        if (input.startsWith(']]>', pos)) fail("']]>' in text");
        text += char;
        pos++;
      }
    }
  };
  if (input.startsWith('<?xml')) {
    const end = input.indexOf('?>');
    if (end === -1) fail('unterminated XML declaration');
    pos = end + 2;
  }
  skipSpace();
  const root = element();
  skipSpace();
  if (pos !== input.length) fail('content after the root element');
  return root;
}

export const childrenNamed = (parent: XmlElement, name: string) =>
  parent.children.filter((c) => c.name === name);
