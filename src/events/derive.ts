import type { DeriveExpression, EventFieldConfig } from '../config/schema.js';

/** What an expression yields; `integer` is a number known to be whole. */
export type ValueKind = 'string' | 'number' | 'integer' | 'boolean' | 'timestamp';

export type Scalar = string | number | boolean;

/** The kind a declared field holds once validated (an enum is a string). */
export function fieldKind(type: EventFieldConfig['type']): ValueKind {
  return type === 'enum' ? 'string' : type;
}

/** Whether a value of kind `actual` may be stored in a field declared as `declared`. */
export function fits(declared: EventFieldConfig['type'], actual: ValueKind): boolean {
  if (declared === 'number') return actual === 'number' || actual === 'integer';
  return fieldKind(declared) === actual;
}

const isNumeric = (kind: ValueKind) => kind === 'number' || kind === 'integer';

/**
 * The kind an expression yields, checked once when the config loads so a bad expression is a
 * config error rather than a rejected event. `kindOf` names the kind of each field it may read.
 */
export function expressionKind(
  expression: DeriveExpression,
  kindOf: (field: string) => ValueKind | undefined,
): { kind: ValueKind } | { problem: string } {
  const operand = (
    inner: DeriveExpression,
    wanted: (kind: ValueKind) => boolean,
    what: string,
    op: string,
  ) => {
    const result = expressionKind(inner, kindOf);
    if ('problem' in result) return result;
    return wanted(result.kind) ? result : { problem: `${op} needs ${what}, not ${article(result.kind)}` };
  };
  if (typeof expression === 'string') {
    const kind = kindOf(expression);
    return kind
      ? { kind }
      : { problem: `"${expression}" is not a field it can read (a declared field that is not derived)` };
  }
  if (typeof expression === 'number') return { kind: Number.isInteger(expression) ? 'integer' : 'number' };
  if (typeof expression === 'boolean') return { kind: 'boolean' };
  if ('literal' in expression) return literalKind(expression.literal);
  if ('concat' in expression) {
    for (const part of expression.concat) {
      const result = expressionKind(part, kindOf);
      if ('problem' in result) return result;
    }
    return { kind: 'string' };
  }
  if ('lower' in expression) return then(operand(expression.lower, isText, 'text', 'lower'), 'string');
  if ('upper' in expression) return then(operand(expression.upper, isText, 'text', 'upper'), 'string');
  if ('length' in expression) return then(operand(expression.length, isText, 'text', 'length'), 'integer');
  if ('round' in expression) {
    const kind = expression.digits ? 'number' : 'integer';
    return then(operand(expression.round, isNumeric, 'a number', 'round'), kind);
  }
  if ('multiply' in expression) {
    const [inner, factor] = expression.multiply;
    const result = operand(inner, isNumeric, 'a number', 'multiply');
    if ('problem' in result) return result;
    return { kind: result.kind === 'integer' && Number.isInteger(factor) ? 'integer' : 'number' };
  }
  if ('divide' in expression)
    return then(operand(expression.divide[0], isNumeric, 'a number', 'divide'), 'number');
  return { kind: 'timestamp' };
}

const isText = (kind: ValueKind) => kind === 'string';

const article = (kind: ValueKind) => (kind === 'integer' ? 'an integer' : `a ${kind}`);

function literalKind(value: Scalar): { kind: ValueKind } {
  if (typeof value === 'string') return { kind: 'string' };
  if (typeof value === 'boolean') return { kind: 'boolean' };
  return { kind: Number.isInteger(value) ? 'integer' : 'number' };
}

function then(
  result: { kind: ValueKind } | { problem: string },
  kind: ValueKind,
): { kind: ValueKind } | { problem: string } {
  return 'problem' in result ? result : { kind };
}

/**
 * Evaluates a checked expression over an event's validated fields. A field that is absent makes
 * the whole expression absent (undefined), as NULL does in SQL: a derived value is never half-made.
 */
export function evaluate(
  expression: DeriveExpression,
  fields: Readonly<Record<string, Scalar>>,
  nowMs: number,
): Scalar | undefined {
  if (typeof expression === 'string')
    return Object.hasOwn(fields, expression) ? fields[expression] : undefined;
  if (typeof expression !== 'object') return expression;
  if ('literal' in expression) return expression.literal;
  if ('concat' in expression) {
    let text = '';
    for (const part of expression.concat) {
      const value = evaluate(part, fields, nowMs);
      if (value === undefined) return undefined;
      text += String(value);
    }
    return text;
  }
  if ('lower' in expression)
    return mapText(evaluate(expression.lower, fields, nowMs), (s) => s.toLowerCase());
  if ('upper' in expression)
    return mapText(evaluate(expression.upper, fields, nowMs), (s) => s.toUpperCase());
  if ('length' in expression)
    return mapText(evaluate(expression.length, fields, nowMs), (s) => [...s].length);
  if ('round' in expression) {
    const value = evaluate(expression.round, fields, nowMs);
    if (typeof value !== 'number') return undefined;
    const scale = 10 ** (expression.digits ?? 0);
    return Math.round(value * scale) / scale;
  }
  if ('multiply' in expression) {
    const value = evaluate(expression.multiply[0], fields, nowMs);
    return typeof value === 'number' ? finite(value * expression.multiply[1]) : undefined;
  }
  if ('divide' in expression) {
    const value = evaluate(expression.divide[0], fields, nowMs);
    return typeof value === 'number' ? finite(value / expression.divide[1]) : undefined;
  }
  return new Date(nowMs).toISOString();
}

function mapText<T>(value: Scalar | undefined, fn: (text: string) => T): T | undefined {
  return typeof value === 'string' ? fn(value) : undefined;
}

/** Overflow (1e308 × 10) has no place in a column: treat it as absent rather than store Infinity. */
function finite(value: number): number | undefined {
  return Number.isFinite(value) ? value : undefined;
}
