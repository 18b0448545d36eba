// thpsim view: the page. It fetches /api/data (the run, compare result and/or check trace the
// server was started with) and shows the views as tabs: #/map, #/explain, #/timeline, #/race.

import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { ViewData } from '../view-data.ts';
import { ExplainView } from './ExplainView.tsx';
import { MapView } from './MapView.tsx';
import { RaceView } from './RaceView.tsx';
import { TimelineView } from './TimelineView.tsx';
import './style.css';

type Tab = 'map' | 'explain' | 'timeline' | 'race';
const TABS: Array<[Tab, string]> = [
  ['map', 'Address space'],
  ['explain', 'Collapse explainer'],
  ['timeline', 'Timeline'],
  ['race', 'Race trace'],
];

function tabOf(hash: string): Tab | null {
  const m = /^#\/(map|explain|timeline|race)\b/.exec(hash);
  return m ? (m[1] as Tab) : null;
}

function available(d: ViewData): Tab[] {
  const t: Tab[] = [];
  if (d.run?.metrics) t.push('map', 'explain');
  if (d.run || d.compare) t.push('timeline');
  if (d.check) t.push('race');
  return t;
}

function App() {
  const [data, setData] = useState<ViewData | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    fetch('/api/data')
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((d: ViewData) => setData(d))
      .catch((e: Error) => setError(e.message));
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  if (error) return <main>Cannot load the data: {error}</main>;
  if (!data) return <main class="muted">Loading…</main>;
  const tabs = available(data);
  const tab = tabOf(hash) ?? tabs[0];
  return (
    <>
      <header>
        <h1>thpsim view</h1>
        <span>{data.title}</span>
        <nav>
          {TABS.filter(([t]) => tabs.includes(t)).map(([t, label]) => (
            <a key={t} href={`#/${t}`} class={t === tab ? 'active' : ''} data-testid={`tab-${t}`}>
              {label}
            </a>
          ))}
        </nav>
      </header>
      <main>
        {!tabs.length && <p>Nothing to show.</p>}
        {tab === 'map' && data.run?.metrics && <MapView run={data.run} />}
        {tab === 'explain' && data.run?.metrics && <ExplainView run={data.run} />}
        {tab === 'timeline' && <TimelineView run={data.run} compare={data.compare} />}
        {tab === 'race' && data.check && <RaceView trace={data.check} />}
        {tab && !tabs.includes(tab) && <p>This view needs data the server was not given.</p>}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
