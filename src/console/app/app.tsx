import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { type Api, ApiFailure, apiClient, type Whoami } from './api.js';
import { KeysPage } from './pages/keys.js';
import { OverviewPage } from './pages/overview.js';
import { RequestDetailPage } from './pages/request-detail.js';
import { RequestsPage } from './pages/requests.js';
import { SignInPage } from './pages/sign-in.js';
import { TargetsPage } from './pages/targets.js';
import { href, type Location, useLocation } from './router.js';
import { forgetKey, savedKey, saveKey } from './session.js';
import { ErrorNotice, Loading } from './states.js';

interface Session {
  key: string;
  me: Whoami;
  /** Whether this gateway has the keys admin API (it arrives with the keys feature). */
  hasKeys: boolean;
}

interface Page {
  path: string;
  title: string;
  adminOnly: boolean;
}

const pages = {
  overview: { path: '/', title: 'Overview', adminOnly: false },
  targets: { path: '/targets', title: 'Routes and targets', adminOnly: true },
  requests: { path: '/requests', title: 'Requests', adminOnly: false },
  keys: { path: '/keys', title: 'Keys and budgets', adminOnly: true },
} satisfies Record<string, Page>;

/** Who the key belongs to, and which optional pages this gateway has. */
async function openSession(key: string): Promise<Session> {
  const api = apiClient(key);
  // Both at once, so a page's own fetches wait for one round trip, not two; the keys API
  // refuses a non-admin key, which then reads as "no keys page" like a gateway without it.
  const [me, hasKeys] = await Promise.all([
    api.whoami(),
    api.keys().then(
      () => true,
      () => false,
    ),
  ]);
  return { key, me, hasKeys: me.admin && hasKeys };
}

export function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState(savedKey() !== null);
  const [restoreError, setRestoreError] = useState<Error | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const location = useLocation();

  const signOut = (message: string | null) => {
    forgetKey();
    setSession(null);
    setNotice(message);
  };

  const restore = () => {
    const key = savedKey();
    if (!key) return setRestoring(false);
    setRestoring(true);
    setRestoreError(null);
    openSession(key).then(
      (s) => {
        setSession(s);
        setRestoring(false);
      },
      (error: Error) => {
        setRestoring(false);
        if (error instanceof ApiFailure && error.status === 401) {
          signOut('The saved key is no longer accepted: sign in again.');
        } else setRestoreError(error);
      },
    );
  };
  useEffect(restore, []);

  const api = useMemo(
    () =>
      session
        ? apiClient(session.key, () => signOut('The gateway no longer accepts this key: sign in again.'))
        : null,
    [session],
  );

  if (restoreError) {
    return (
      <main class="center-page" id="main">
        <ErrorNotice error={restoreError} what="your session" retry={restore} />
      </main>
    );
  }
  if (restoring) {
    return (
      <main class="center-page" id="main">
        <Loading what="your session" />
      </main>
    );
  }
  if (!session || !api) {
    return (
      <SignInPage
        notice={notice}
        signIn={async (key) => {
          const s = await openSession(key);
          saveKey(key);
          setNotice(null);
          setSession(s);
        }}
      />
    );
  }
  return (
    <Shell session={session} api={api} location={location} signOut={() => signOut('You are signed out.')} />
  );
}

function Shell({
  session,
  api,
  location,
  signOut,
}: {
  session: Session;
  api: Api;
  location: Location;
  signOut: () => void;
}) {
  const { me } = session;
  const visible = Object.values(pages).filter(
    (page) => (!page.adminOnly || me.admin) && (page !== pages.keys || session.hasKeys),
  );
  const current =
    location.path === '/'
      ? pages.overview
      : visible.find((page) => page.path !== '/' && location.path.startsWith(page.path));

  useEffect(() => {
    document.title = `${current?.title ?? 'Not found'} · Sluice`;
  }, [current]);

  // A new page takes the focus, as a page load would: keyboard and screen-reader users start at its top.
  const firstPath = useRef(location.path);
  useEffect(() => {
    if (location.path !== firstPath.current) document.getElementById('main')?.focus();
    firstPath.current = '';
  }, [location.path]);

  return (
    <div class="layout">
      <button type="button" class="skip-link" onClick={skipToMain}>
        Skip to content
      </button>
      <header class="topbar">
        <a class="brand" href={href('/')}>
          <span class="brand-mark" aria-hidden="true">
            ≋
          </span>{' '}
          Sluice
        </a>
        <div class="who">
          <span class="who-name" data-testid="who">
            {me.admin ? 'Admin' : (me.keyName ?? 'API key')}
            {!me.admin && me.team && <span class="muted"> · team {me.team}</span>}
          </span>
          <button type="button" class="button button-quiet" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <nav class="sidebar" aria-label="Console pages">
        <ul>
          {visible.map((page) => (
            <li key={page.path}>
              <a href={href(page.path)} aria-current={current === page ? 'page' : undefined}>
                {page.title}
              </a>
            </li>
          ))}
        </ul>
        {!me.admin && (
          <p class="sidebar-note">
            Signed in with an API key: you see only its requests. Sign in with the admin key for every page.
          </p>
        )}
      </nav>
      <main id="main" tabIndex={-1} class="content">
        <PageFor session={session} api={api} location={location} current={current} />
      </main>
    </div>
  );
}

/** A button, not a link to #main: the hash is the router's. */
function skipToMain() {
  document.getElementById('main')?.focus();
}

function PageFor({
  session,
  api,
  location,
  current,
}: {
  session: Session;
  api: Api;
  location: Location;
  current: Page | undefined;
}) {
  if (current === pages.overview) return <OverviewPage api={api} location={location} />;
  if (current === pages.targets) return <TargetsPage api={api} />;
  if (current === pages.keys) return <KeysPage api={api} location={location} />;
  if (current === pages.requests) {
    const id = location.path.slice('/requests/'.length);
    if (location.path.startsWith('/requests/') && id)
      return <RequestDetailPage api={api} id={decodeURIComponent(id)} admin={session.me.admin} />;
    return <RequestsPage api={api} location={location} />;
  }
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        There is no page at <code>#{location.path}</code>
        {session.me.admin ? '' : ' for an API key (some pages need the admin key)'}.{' '}
        <a href={href('/')}>Go to the overview</a>.
      </p>
    </section>
  );
}
