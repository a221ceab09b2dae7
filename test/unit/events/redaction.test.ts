import { describe, expect, it } from 'vitest';
import { compileRedactor, luhnValid, type Redactor } from '../../../src/events/redaction.js';

const only = (...rules: Parameters<typeof compileRedactor>[0]): Redactor => {
  const redactor = compileRedactor(rules);
  if (!redactor) throw new Error('expected a redactor');
  return redactor;
};

describe('built-in redaction patterns', () => {
  it('api-key: provider and cloud keys, and the value of key=value pairs, keeping the name', () => {
    const redact = only('api-key');
    expect(redact('key sk-proj-abc123DEF456ghi789JKLmno here')).toBe('key [REDACTED:api-key] here');
    expect(redact('sk-ant-api03-AbCdEfGhIjKlMnOpQrStUv')).toBe('[REDACTED:api-key]');
    expect(redact('aws AKIAIOSFODNN7EXAMPLE.')).toBe('aws [REDACTED:api-key].');
    expect(redact(`gh ghp_${'a1B2'.repeat(9)}`)).toBe('gh [REDACTED:api-key]');
    expect(redact('{"api_key": "abcd1234efgh", "x": 1}')).toBe('{"api_key": "[REDACTED:api-key]", "x": 1}');
    expect(redact('login password=hunter22&next=/')).toBe('login password=[REDACTED:api-key]&next=/');
    expect(redact('a task-force of sk-short and desk-jobs')).toBe('a task-force of sk-short and desk-jobs');
  });

  it('bearer-token: bearer and basic credentials and JWTs, keeping the scheme', () => {
    const redact = only('bearer-token');
    expect(redact('Authorization: Bearer abc.def-ghi_123456')).toBe(
      'Authorization: Bearer [REDACTED:bearer-token]',
    );
    expect(redact('authorization: basic dXNlcjpwYXNzd29yZA==')).toBe(
      'authorization: basic [REDACTED:bearer-token]',
    );
    expect(redact('token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sflKxwRJSMeKKF2QT4fwpM end')).toBe(
      'token [REDACTED:bearer-token] end',
    );
    expect(redact('the bearer of bad news')).toBe('the bearer of bad news');
  });

  it('email: addresses, with plus tags and subdomains', () => {
    const redact = only('email');
    expect(redact('write to jane.doe+ai@mail.example.co.uk today')).toBe('write to [REDACTED:email] today');
    expect(redact('no address @ here, nor user@localhost')).toBe('no address @ here, nor user@localhost');
  });

  it('credit-card: 13 to 19 digits, spaced or dashed, only when the Luhn check passes', () => {
    const redact = only('credit-card');
    expect(redact('card 4111 1111 1111 1111 exp 12/29')).toBe('card [REDACTED:credit-card] exp 12/29');
    expect(redact('amex 3782-822463-10005')).toBe('amex [REDACTED:credit-card]');
    expect(redact('5555555555554444')).toBe('[REDACTED:credit-card]');
    expect(redact('order 4111 1111 1111 1112')).toBe('order 4111 1111 1111 1112');
    expect(redact('id 123456789012')).toBe('id 123456789012');
  });

  it('ip: IPv4 and IPv6 addresses, not versions, times or out-of-range octets', () => {
    const redact = only('ip');
    expect(redact('from 192.168.1.20.')).toBe('from [REDACTED:ip].');
    expect(redact('peer 2001:db8::8a2e:370:7334 and ::1')).toBe('peer [REDACTED:ip] and [REDACTED:ip]');
    expect(redact('v1.2.3 at 12:30:45 to 999.1.1.1 in std::vector')).toBe(
      'v1.2.3 at 12:30:45 to 999.1.1.1 in std::vector',
    );
  });

  it('phone: international, North American and grouped national numbers, not dates or ids', () => {
    const redact = only('phone');
    expect(redact('call +1 (555) 123-4567 now')).toBe('call [REDACTED:phone] now');
    expect(redact('+44 20 7946 0958')).toBe('[REDACTED:phone]');
    expect(redact('us 555-123-4567, (555) 123-4567 or 555.123.4567')).toBe(
      'us [REDACTED:phone], [REDACTED:phone] or [REDACTED:phone]',
    );
    expect(redact('fr 06 12 34 56 78')).toBe('fr [REDACTED:phone]');
    expect(redact('on 2026-03-01 order 12345 costs 1 234 567')).toBe(
      'on 2026-03-01 order 12345 costs 1 234 567',
    );
  });
});

describe('compileRedactor', () => {
  it('has nothing to do without rules', () => {
    expect(compileRedactor([])).toBeUndefined();
  });

  it('runs custom patterns by name, with their flags', () => {
    const redact = only({ name: 'ticket', regex: 'tck-\\d+', flags: 'i' });
    expect(redact('see TCK-1234 and tck-9')).toBe('see [REDACTED:ticket] and [REDACTED:ticket]');
  });

  it('runs secrets before numbers whatever the order given, so no half key is left', () => {
    const redact = only('credit-card', 'phone', 'api-key');
    expect(redact('sk-4111111111111111abcdefgh')).toBe('[REDACTED:api-key]');
  });

  it('applies every pattern to one text', () => {
    const redact = only('api-key', 'bearer-token', 'email', 'credit-card', 'ip', 'phone');
    expect(
      redact('jane@example.com paid with 4242 4242 4242 4242 from 10.0.0.7, call +33 6 12 34 56 78'),
    ).toBe('[REDACTED:email] paid with [REDACTED:credit-card] from [REDACTED:ip], call [REDACTED:phone]');
  });
});

describe('luhnValid', () => {
  it('accepts card numbers and refuses one digit off', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('378282246310005')).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
    expect(luhnValid('')).toBe(false);
  });
});
