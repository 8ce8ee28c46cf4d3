import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { api, ApiFailure, describeFailure, setApiKey } from './api';
import { live } from './live';
import type { Me } from './types';

/** The key lives in this tab only (sessionStorage): closing the tab signs out. */
const STORAGE_KEY = 'fastgpu.console.key';

interface Session {
  me: Me;
  signOut(): void;
}

const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in console');
  return session;
}

/** May this role see views of `area`? Admin sees every area. */
export function allowed(me: Me, area: 'tenant' | 'finance' | 'sre'): boolean {
  return me.role === area || (me.role === 'admin' && area !== 'tenant');
}

async function whoIs(key: string): Promise<Me> {
  setApiKey(key);
  return api<Me>('/v1/me');
}

/** Renders `signedIn` once a key is known and valid, the sign-in form otherwise. */
export function SessionProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(() => sessionStorage.getItem(STORAGE_KEY) !== null);
  const [failure, setFailure] = useState<string | null>(null);

  const signOut = useCallback(() => {
    sessionStorage.removeItem(STORAGE_KEY);
    setApiKey(null);
    live.stop();
    setMe(null);
  }, []);

  const signIn = useCallback(
    async (key: string) => {
      setFailure(null);
      try {
        const who = await whoIs(key);
        sessionStorage.setItem(STORAGE_KEY, key);
        setApiKey(key, () => {
          signOut();
          setFailure('The key is no longer accepted (revoked?). Sign in again.');
        });
        setMe(who);
        live.start();
      } catch (error) {
        setApiKey(null);
        setFailure(error instanceof ApiFailure && error.status === 401 ? 'This key is not accepted: check that it is complete and not revoked.' : describeFailure(error));
      }
    },
    [signOut],
  );

  useEffect(() => {
    const stored = sessionStorage.getItem(STORAGE_KEY);
    if (stored) void signIn(stored).finally(() => setChecking(false));
  }, [signIn]);

  if (checking) return <p className="loading">Checking the key…</p>;
  if (!me) return <SignIn onSubmit={signIn} failure={failure} />;
  return <SessionContext.Provider value={{ me, signOut }}>{children}</SessionContext.Provider>;
}

function SignIn({ onSubmit, failure }: { onSubmit(key: string): Promise<void>; failure: string | null }) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    document.title = 'Sign in · FastGPU console';
  }, []);
  return (
    <main className="sign-in" id="main">
      <h1>FastGPU console</h1>
      <form
        onSubmit={(event) => {
          event.preventDefault();
          setBusy(true);
          void onSubmit(key.trim()).finally(() => setBusy(false));
        }}
      >
        <label htmlFor="api-key">API key</label>
        <input id="api-key" name="api-key" type="password" autoComplete="off" required value={key} onChange={(e) => setKey(e.target.value)} aria-describedby="api-key-help" aria-invalid={failure ? true : undefined} />
        <p id="api-key-help" className="help">
          Paste a tenant, finance or SRE key (<code>npm start</code> prints one of each kind). It is kept in this tab only and sent only to this server.
        </p>
        {failure && (
          <p role="alert" className="error">
            {failure}
          </p>
        )}
        <button type="submit" disabled={busy || key.trim() === ''}>
          Sign in
        </button>
      </form>
    </main>
  );
}
