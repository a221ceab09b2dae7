import type { ComponentChildren } from 'preact';
import { ApiFailure } from './api.js';

/** A failed load: what the gateway said, and what to do about it. */
export function ErrorNotice({ error, what, retry }: { error: Error; what: string; retry?: () => void }) {
  const status = error instanceof ApiFailure ? error.status : 0;
  const hint =
    status === 0
      ? 'Check that the gateway is running, then retry.'
      : status === 404 && error instanceof ApiFailure && error.code === 'unknown_url'
        ? 'This gateway does not have that API: update Sluice, or check the URL the console is served from.'
        : status === 403
          ? 'Sign in with a key that may see this page.'
          : status >= 500
            ? 'The gateway failed to answer; its log says why. Retry in a moment.'
            : '';
  return (
    <div class="notice notice-error" role="alert">
      <strong>Could not load {what}.</strong> {error.message} {hint}
      {retry && (
        <button type="button" class="link-button" onClick={retry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty">
      <p class="empty-title">{title}</p>
      {children && <div class="empty-body">{children}</div>}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="loading" role="status">
      Loading {what}…
    </p>
  );
}

/** How to get traffic flowing, for empty charts and lists. */
export function NoTrafficHint() {
  return (
    <>
      Send a request to <code>/v1/chat/completions</code>, or start the gateway with{' '}
      <code>sluice up --demo</code> for steady sample traffic.
    </>
  );
}
