import { useState } from 'preact/hooks';
import { ApiFailure } from '../api.js';

export function SignInPage({
  signIn,
  notice,
}: {
  signIn: (key: string) => Promise<void>;
  notice: string | null;
}) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const trimmed = key.trim();
    if (!trimmed) {
      setError('Enter a key: the admin key, or an API key to see only its own requests.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await signIn(trimmed);
    } catch (failure) {
      setError(messageFor(failure as Error));
      setBusy(false);
    }
  };

  return (
    <main class="center-page" id="main">
      <form class="sign-in card" onSubmit={submit} aria-describedby="sign-in-help" noValidate>
        <h1>
          <span class="brand-mark" aria-hidden="true">
            ≋
          </span>{' '}
          Sluice console
        </h1>
        {notice && (
          <p class="notice" role="status">
            {notice}
          </p>
        )}
        <label for="key">Key</label>
        <input
          id="key"
          name="key"
          type="password"
          autocomplete="off"
          spellcheck={false}
          value={key}
          onInput={(e) => setKey((e.target as HTMLInputElement).value)}
          aria-invalid={error ? 'true' : undefined}
          aria-errormessage={error ? 'sign-in-error' : undefined}
          // biome-ignore lint/a11y/noAutofocus: signing in is the only thing to do on this page.
          autoFocus
        />
        {error && (
          <p id="sign-in-error" class="notice notice-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="button" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p id="sign-in-help" class="muted small">
          The admin key (<code>auth.adminKey</code>, e.g. <code>$SLUICE_ADMIN_KEY</code>) sees everything. An
          API key (<code>auth.apiKeys</code>) sees only its own requests. The key stays in this tab until you
          sign out or close it.
        </p>
      </form>
    </main>
  );
}

function messageFor(error: Error): string {
  if (!(error instanceof ApiFailure)) return `Signing in failed: ${error.message}`;
  if (error.status === 401 || error.status === 403) return `This key was refused. ${error.message}`;
  if (error.status === 0) return error.message;
  if (error.status === 404)
    return 'This gateway has no console API (/api/whoami): it is older than this console. Update Sluice.';
  return `Signing in failed: ${error.message}`;
}
