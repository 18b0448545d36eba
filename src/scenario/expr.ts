// Integer expressions in scenario fields, so one file runs on every page-table geometry:
//   "4pmd", "(NR - NR/2 - 1) pages", "NR/8", "1GiB + 2pmd", "2MiB", "0x200000", 4096.
// NR is HPAGE_PMD_NR (PTEs per PTE table); PAGE and PMD are the page and PMD sizes in bytes; a
// unit after a number or a parenthesised expression multiplies it (K/KiB/kB, M, G, T, B, page(s),
// pmd(s)). Values are a count or a size in bytes; the result of a size field must be a size (a
// bare number is bytes, as in version 1 of the format). Division truncates, as in C.

import { BINARY_UNITS } from './size.ts';

export class ExprError extends Error {}

/** Bytes per unit: the binary units of size.ts; `page` and `pmd` depend on the geometry. */
const GEO_UNITS: Record<string, 'PAGE' | 'PMD'> = {
  page: 'PAGE',
  pages: 'PAGE',
  pmd: 'PMD',
  pmds: 'PMD',
};

export type ExprNode =
  | { k: 'num'; v: number }
  | { k: 'id'; name: string }
  | { k: 'unit'; e: ExprNode; unit: string }
  | { k: 'neg'; e: ExprNode }
  | { k: 'bin'; op: '+' | '-' | '*' | '/' | '%'; a: ExprNode; b: ExprNode };

/** A value: a plain count, or a size in bytes. */
export interface Value {
  v: number;
  bytes: boolean;
}

/** What names mean: NR, PAGE, PMD and loop variables. Keys are upper case. */
export type Env = ReadonlyMap<string, Value>;

export function geometryEnv(g: {
  ptrsPerPte: number;
  pageSize: number;
  pmdSize: number;
}): Map<string, Value> {
  return new Map<string, Value>([
    ['NR', { v: g.ptrsPerPte, bytes: false }],
    ['PAGE', { v: g.pageSize, bytes: true }],
    ['PMD', { v: g.pmdSize, bytes: true }],
  ]);
}

type Tok = { t: 'num'; v: number } | { t: 'id'; v: string } | { t: 'op'; v: string };

function tokenize(src: string): Tok[] {
  const out: Tok[] = [];
  const re =
    /\s*(?:(0x[0-9a-f]+)|([0-9]+(?:\.[0-9]+)?|\.[0-9]+)|([A-Za-z_][A-Za-z0-9_]*)|([-+*/%()]))/iy;
  let i = 0;
  while (i < src.length) {
    if (/^\s*$/.test(src.slice(i))) break;
    re.lastIndex = i;
    const m = re.exec(src);
    if (!m) throw new ExprError(`unexpected "${src.slice(i).trim()[0]}"`);
    if (m[1]) out.push({ t: 'num', v: Number.parseInt(m[1].slice(2), 16) });
    else if (m[2]) out.push({ t: 'num', v: Number(m[2]) });
    else if (m[3]) out.push({ t: 'id', v: m[3] });
    else out.push({ t: 'op', v: m[4] });
    i = re.lastIndex;
  }
  return out;
}

/** Whether a name is a unit (K, MiB, page, pmds, ...), which cannot name a variable. */
export function isUnit(name: string): boolean {
  const l = name.toLowerCase();
  return l in BINARY_UNITS || l in GEO_UNITS;
}

/** Parse an expression; throws ExprError. */
export function parseExprNode(src: string): ExprNode {
  const toks = tokenize(src);
  if (toks.length === 0) throw new ExprError('empty expression');
  let p = 0;
  const peek = () => toks[p];
  const isOp = (v: string) => peek()?.t === 'op' && peek()!.v === v;
  const expr = (): ExprNode => {
    let a = term();
    while (isOp('+') || isOp('-')) {
      const op = toks[p++].v as '+' | '-';
      a = { k: 'bin', op, a, b: term() };
    }
    return a;
  };
  const term = (): ExprNode => {
    let a = unary();
    while (isOp('*') || isOp('/') || isOp('%')) {
      const op = toks[p++].v as '*' | '/' | '%';
      a = { k: 'bin', op, a, b: unary() };
    }
    return a;
  };
  const unary = (): ExprNode => {
    if (isOp('-')) {
      p++;
      return { k: 'neg', e: unary() };
    }
    if (isOp('+')) {
      p++;
      return unary();
    }
    return postfix();
  };
  const postfix = (): ExprNode => {
    const tok = peek();
    let e: ExprNode;
    if (!tok) throw new ExprError('the expression ends too early');
    if (tok.t === 'num') {
      p++;
      e = { k: 'num', v: tok.v };
    } else if (tok.t === 'id') {
      p++;
      const l = tok.v.toLowerCase();
      if (l in GEO_UNITS) e = { k: 'id', name: GEO_UNITS[l] };
      else if (l in BINARY_UNITS)
        throw new ExprError(`a unit ("${tok.v}") needs a number before it`);
      else e = { k: 'id', name: tok.v.toUpperCase() };
    } else if (tok.v === '(') {
      p++;
      e = expr();
      if (!isOp(')')) throw new ExprError('missing ")"');
      p++;
    } else throw new ExprError(`unexpected "${tok.v}"`);
    const next = peek();
    if (next?.t === 'id' && e.k !== 'unit') {
      if (!isUnit(next.v)) throw new ExprError(`unknown unit "${next.v}"`);
      p++;
      e = { k: 'unit', e, unit: next.v.toLowerCase() };
    }
    return e;
  };
  const root = expr();
  if (p < toks.length) {
    const t = toks[p];
    throw new ExprError(
      t.t === 'id' ? `unknown unit "${t.v}"` : `unexpected "${t.t === 'num' ? t.v : t.v}"`,
    );
  }
  return root;
}

/** Names an expression uses (upper case). */
export function exprNames(n: ExprNode, out = new Set<string>()): Set<string> {
  switch (n.k) {
    case 'id':
      out.add(n.name);
      break;
    case 'unit':
      if (GEO_UNITS[n.unit]) out.add(GEO_UNITS[n.unit]);
      exprNames(n.e, out);
      break;
    case 'neg':
      exprNames(n.e, out);
      break;
    case 'bin':
      exprNames(n.a, out);
      exprNames(n.b, out);
      break;
  }
  return out;
}

export function evalExprNode(n: ExprNode, env: Env): Value {
  switch (n.k) {
    case 'num':
      return { v: n.v, bytes: false };
    case 'id': {
      const v = env.get(n.name);
      if (!v)
        throw new ExprError(`unknown name "${n.name}" (known: ${[...env.keys()].join(', ')})`);
      return v;
    }
    case 'neg': {
      const v = evalExprNode(n.e, env);
      return { v: -v.v, bytes: v.bytes };
    }
    case 'unit': {
      const v = evalExprNode(n.e, env);
      if (v.bytes) throw new ExprError(`unit "${n.unit}" after a size`);
      const geo = GEO_UNITS[n.unit];
      const mult = geo ? env.get(geo)!.v : BINARY_UNITS[n.unit];
      return { v: v.v * mult, bytes: true };
    }
    case 'bin': {
      const a = evalExprNode(n.a, env);
      const b = evalExprNode(n.b, env);
      switch (n.op) {
        case '+':
        case '-':
          if (a.bytes !== b.bytes)
            throw new ExprError(`cannot ${n.op === '+' ? 'add' : 'subtract'} a size and a count`);
          return { v: n.op === '+' ? a.v + b.v : a.v - b.v, bytes: a.bytes };
        case '*':
          if (a.bytes && b.bytes) throw new ExprError('cannot multiply two sizes');
          return { v: a.v * b.v, bytes: a.bytes || b.bytes };
        case '/':
        case '%': {
          if (!a.bytes && b.bytes) throw new ExprError('cannot divide a count by a size');
          if (b.v === 0) throw new ExprError('division by zero');
          const v = n.op === '/' ? Math.trunc(a.v / b.v) : a.v % b.v;
          return { v, bytes: n.op === '/' ? a.bytes && !b.bytes : a.bytes };
        }
      }
    }
  }
}

export type ExprKind = 'size' | 'count';

export interface ExprConstraints {
  positive?: boolean;
  powerOfTwo?: boolean;
}

/**
 * A field's expression as written, parsed but not yet evaluated (sizes depend on the geometry,
 * and on loop variables inside `repeat`). Scenario resolution turns it into a number.
 */
export class Expr {
  readonly names: Set<string>;
  constructor(
    readonly src: string | number,
    readonly node: ExprNode,
    readonly kind: ExprKind,
    readonly constraints: ExprConstraints = {},
  ) {
    this.names = exprNames(node);
  }

  /** A bare number literal (no unit, no operator): version-1 sizes, in bytes. */
  get literal(): boolean {
    return this.node.k === 'num';
  }

  /** Evaluate to a whole number: bytes for a size, a count otherwise. Throws ExprError. */
  evaluate(env: Env): number {
    const r = evalExprNode(this.node, env);
    if (this.kind === 'size' && !r.bytes && !this.literal)
      throw new ExprError('this is a count, not a size: give it a unit, e.g. "NR pages" or "2pmd"');
    if (this.kind === 'count' && r.bytes)
      throw new ExprError('this is a size, not a count (drop the unit)');
    if (!Number.isFinite(r.v) || !Number.isInteger(r.v))
      throw new ExprError(`${r.v} is not a whole number`);
    if (!Number.isSafeInteger(r.v)) throw new ExprError(`${r.v} is too large`);
    return r.v;
  }
}
