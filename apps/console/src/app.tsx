import { useEffect, useState, type ReactNode } from 'react';
import { live, type LiveStatus } from './live';
import { jobsStore } from './jobs-store';
import { Link, match, navigate, usePath, useTitle } from './router';
import { allowed, useSession } from './session';
import type { Me } from './types';
import { routes } from './routes';

interface NavItem {
  to: string;
  label: string;
}

/** The views each role sees, in menu order (admin: finance and SRE views). */
export function navigation(me: Me): NavItem[] {
  const items: NavItem[] = [];
  if (allowed(me, 'tenant')) {
    items.push({ to: '/jobs', label: 'Jobs' }, { to: '/jobs/new', label: 'Submit job' }, { to: '/leases', label: 'Leases' }, { to: '/usage', label: 'Usage' }, { to: '/invoices', label: 'Invoices' }, { to: '/price-books', label: 'Price books' }, { to: '/sla', label: 'SLA reports' });
  }
  if (allowed(me, 'finance')) {
    items.push({ to: '/invoices', label: 'Invoices' }, { to: '/review-queue', label: 'Review queue' }, { to: '/price-books', label: 'Price books' }, { to: '/usage', label: 'Usage' }, { to: '/sla', label: 'SLA reports' });
  }
  if (allowed(me, 'sre')) {
    items.push({ to: '/fleet', label: 'Fleet' }, { to: '/queues', label: 'Queues' }, { to: '/jobs', label: 'Jobs' }, { to: '/projections', label: 'Projections' }, { to: '/dead-letters', label: 'Dead letters' }, { to: '/slo', label: 'SLOs' }, { to: '/sla', label: 'SLA reports' });
  }
  const seen = new Set<string>();
  return items.filter((item) => !seen.has(item.to) && seen.add(item.to));
}

function useLiveStatus(): LiveStatus {
  const [status, setStatus] = useState(live.status);
  useEffect(() => live.onStatus(setStatus), []);
  return status;
}

const LIVE_TEXT: Record<LiveStatus, string> = {
  connecting: 'Live: connecting',
  live: 'Live',
  reconnecting: 'Live: reconnecting',
  unavailable: 'Live updates unavailable on this server',
  stopped: 'Live: off',
};

export function App() {
  const { me, signOut } = useSession();
  const path = usePath();
  const status = useLiveStatus();
  const items = navigation(me);
  const [menuOpen, setMenuOpen] = useState(false);

  useEffect(() => {
    if (path === '/' || path === '') navigate(items[0]?.to ?? '/jobs', { replace: true });
  }, [path, items]);
  useEffect(() => setMenuOpen(false), [path]);

  const active = items.filter((item) => path === item.to || path.startsWith(item.to + '/')).sort((a, b) => b.to.length - a.to.length)[0];
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">FastGPU console</span>
        <nav aria-label="Main" className={menuOpen ? 'open' : ''}>
          <button type="button" className="menu-toggle" aria-expanded={menuOpen} aria-controls="main-menu" onClick={() => setMenuOpen((o) => !o)}>
            Menu
          </button>
          <ul id="main-menu">
            {items.map((item) => (
              <li key={item.to}>
                <Link to={item.to} aria-current={active?.to === item.to ? 'page' : undefined}>
                  {item.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <span className={`live live-${status}`} role="status" data-testid="live-status">
            {LIVE_TEXT[status]}
          </span>
          <span data-testid="signed-in-as">
            {me.role}
            {me.tenantId ? ` · ${me.tenantId}` : ''}
          </span>
          <button
            type="button"
            onClick={() => {
              jobsStore.reset();
              signOut();
              navigate('/', { replace: true });
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Routed path={path} me={me} />
      </main>
    </>
  );
}

function Routed({ path, me }: { path: string; me: Me }): ReactNode {
  for (const route of routes) {
    const params = match(route.pattern, path);
    if (!params) continue;
    if (!route.areas.some((area) => allowed(me, area))) return <NotAllowed />;
    return route.render(params);
  }
  return <NotFound />;
}

function NotFound() {
  useTitle('Not found');
  return (
    <section aria-labelledby="nf-heading">
      <h1 id="nf-heading">Page not found</h1>
      <p>
        There is no view at this address. <Link to="/">Go to the start page</Link>.
      </p>
    </section>
  );
}

function NotAllowed() {
  useTitle('Not available');
  return (
    <section aria-labelledby="na-heading">
      <h1 id="na-heading">Not available for this key</h1>
      <p>This view belongs to another role. Sign in with a key of that role to use it.</p>
    </section>
  );
}
