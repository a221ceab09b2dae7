import { isIP } from 'node:net';
import type { RedactionRule } from '../config/schema.js';

/**
 * The built-in patterns, in the order they run: secrets before numbers, so a card-like run of
 * digits inside a key cannot leave half the key behind. API keys of providers and clouds, bearer
 * and basic tokens and JWTs, email addresses, card numbers that pass the Luhn check, IPv4 and IPv6
 * addresses, phone numbers.
 */
export const redactionPatternNames = [
  'api-key',
  'bearer-token',
  'email',
  'credit-card',
  'ip',
  'phone',
] as const;

type PatternName = (typeof redactionPatternNames)[number];

interface Pattern {
  /** Global. With `keepPrefix`, group 1 is kept (e.g. "Bearer ") and group 2 is the secret. */
  regex: RegExp;
  keepPrefix?: boolean;
  /** A stricter check of a candidate match: the Luhn sum of a card, a real IPv6 address. */
  accept?: (match: string) => boolean;
  /** A character every match contains: a text without it is not scanned at all. */
  needs?: string;
}

const digitCount = (text: string) => text.replace(/\D/g, '').length;

/** The Luhn checksum every payment card number satisfies (and 90% of random digit strings do not). */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let digit = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return digits.length > 0 && sum % 10 === 0;
}

const builtIn: Record<PatternName, Pattern[]> = {
  'api-key': [
    // Provider and cloud key shapes: OpenAI and Anthropic (sk-…, sk-proj-…, sk-ant-…), Stripe,
    // AWS access keys, GitHub, GitLab, Slack and Google API keys.
    { regex: /\b(?:sk|rk|pk)-[A-Za-z0-9_-]{16,}/g },
    { regex: /\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}/g },
    { regex: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g },
    { regex: /\bgh[pousr]_[A-Za-z0-9]{36,}/g },
    { regex: /\bglpat-[A-Za-z0-9_-]{20,}/g },
    { regex: /\bxox[abprs]-[A-Za-z0-9-]{10,}/g },
    { regex: /\bAIza[0-9A-Za-z_-]{35}/g },
    // key=value and "key": "value" for the usual names of secrets; the name stays readable.
    {
      regex:
        /(\b(?:api[_-]?key|x-api-key|secret|client[_-]?secret|access[_-]?token|auth[_-]?token|refresh[_-]?token|password|passwd)["']?\s*[:=]\s*["']?)([^\s"',;&}]{6,})/gi,
      keepPrefix: true,
    },
  ],
  'bearer-token': [
    { regex: /(\b(?:Bearer|Basic)\s+)([A-Za-z0-9\-._~+/]{8,}=*)/gi, keepPrefix: true },
    // JSON Web Tokens, wherever they appear.
    { regex: /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}/g },
  ],
  // Starts only where a local part can start: without the look-behind, a long run of letters with
  // no @ is tried from every position (quadratic: 400 ms for 10 kB of text).
  email: [
    {
      regex: /(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g,
      needs: '@',
    },
  ],
  'credit-card': [
    {
      regex: /(?<![\d])\d(?:[ -]?\d){12,18}(?![\d])/g,
      accept: (match) => luhnValid(match.replace(/\D/g, '')),
    },
  ],
  ip: [
    {
      regex:
        /(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\w|\.\d)/g,
      needs: '.',
    },
    {
      regex: /(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])/g,
      accept: (m) => isIP(m) === 6,
      needs: ':',
    },
  ],
  phone: [
    // International: +<country> then groups, 8 to 15 digits in all.
    {
      regex: /(?<![\w+])\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{1,4}){1,4}(?!\d)/g,
      accept: (m) => digitCount(m) >= 8 && digitCount(m) <= 15,
      needs: '+',
    },
    // North American: (555) 123-4567, 555-123-4567, 555.123.4567.
    { regex: /(?<![\w(])(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w])/g },
    // National numbers with a trunk 0, in groups: 06 12 34 56 78, 020 7946 0958.
    {
      regex: /(?<![\w.-])0\d{1,4}(?:[ -]\d{2,4}){2,4}(?![\w.-])/g,
      accept: (m) => digitCount(m) >= 9 && digitCount(m) <= 12,
    },
  ],
};

/** Replaces what it finds in a text; returns the input itself when nothing matched. */
export type Redactor = (text: string) => string;

/**
 * Compiles redaction rules into one function. Built-in patterns run first in a fixed order
 * (api-key, bearer-token, email, credit-card, ip, phone), custom ones after in the order given.
 * Each match becomes `[REDACTED:<name>]`. Undefined when there are no rules: nothing to do.
 */
export function compileRedactor(rules: readonly RedactionRule[]): Redactor | undefined {
  if (rules.length === 0) return undefined;
  const named = new Set(rules.filter((rule): rule is PatternName => typeof rule === 'string'));
  const steps: { name: string; pattern: Pattern }[] = [];
  for (const name of redactionPatternNames) {
    if (named.has(name)) for (const pattern of builtIn[name]) steps.push({ name, pattern });
  }
  for (const rule of rules) {
    if (typeof rule === 'string') continue;
    steps.push({ name: rule.name, pattern: { regex: new RegExp(rule.regex, `g${rule.flags}`) } });
  }
  return (text) => {
    let out = text;
    for (const { name, pattern } of steps) out = apply(out, name, pattern);
    return out;
  };
}

function apply(text: string, name: string, pattern: Pattern): string {
  const marker = `[REDACTED:${name}]`;
  const { accept, keepPrefix, needs } = pattern;
  if (needs !== undefined && !text.includes(needs)) return text;
  return text.replace(pattern.regex, (match: string, ...groups: unknown[]) => {
    if (accept && !accept(match)) return match;
    return keepPrefix ? `${groups[0] as string}${marker}` : marker;
  });
}
