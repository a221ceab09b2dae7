/**
 * The signed-in key lives in sessionStorage: it survives a reload of the tab but not closing it,
 * and other tabs and sites never see it.
 */
const storageKey = 'sluice.key';

export function savedKey(): string | null {
  try {
    return sessionStorage.getItem(storageKey);
  } catch {
    return null;
  }
}

export function saveKey(key: string): void {
  sessionStorage.setItem(storageKey, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(storageKey);
}
