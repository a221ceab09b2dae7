import { decodeGenerator, encode } from 'gpt-tokenizer';

// Client text may contain "<|endoftext|>" and friends: count them as plain text, never throw.
const asPlainText = { disallowedSpecial: new Set<string>() };

/** Tokens in `text` under the o200k_base encoding (GPT-4o family); an honest count for every model. */
export function countTokens(text: string): number {
  return text.length === 0 ? 0 : encode(text, asPlainText).length;
}

/** `text` split at token boundaries, the way a model streams it; joins back to `text`. */
export function tokenPieces(text: string): string[] {
  if (text.length === 0) return [];
  return [...decodeGenerator(encode(text, asPlainText))];
}

/** The first `limit` tokens of `text`. */
export function truncateToTokens(text: string, limit: number): string {
  return tokenPieces(text).slice(0, limit).join('');
}
