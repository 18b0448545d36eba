// The web viewer end to end: the server's request checks, then each view in Debian's chromium
// (driven by playwright-core) on built-in runs, compared with the model's data, with screenshots
// saved to test-artifacts/screenshots/. And `thpsim view` as a process: it serves, and stops
// cleanly on SIGINT.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { type Browser, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveScenario } from '../src/cli/commands.ts';
import { runWithMetrics } from '../src/report/collect.ts';
import { compareVariants, runCompare } from '../src/report/compare.ts';
import { replayExplain } from '../src/report/explain.ts';
import { type CheckTrace, PTE_NONE, hexAddr } from '../src/report/model.ts';
import { type ViewServer, buildViewer, startViewServer } from '../src/web/server.ts';
import { viewData } from '../src/cli/view-command.ts';
import { ROOT, oneLineError, thpsim } from './support/cli.ts';

const CHROMIUM = process.env.THPSIM_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(ROOT, 'test-artifacts', 'screenshots');
// CI installs chromium (.ci/run); elsewhere the browser tests are skipped without it.
const haveBrowser = existsSync(CHROMIUM) || process.env.CI !== undefined;

const scenario = resolveScenario('mthp-creep').scenario;
const run = runWithMetrics({ ...scenario, collapse_policy: 'v19' });
const compare = runCompare(scenario, compareVariants(['v19', 'v10-scaled', 'v11-cap'], []));
const check = JSON.parse(
  readFileSync(join(ROOT, 'test/fixtures/check-trace-r1.json'), 'utf8'),
) as CheckTrace;

/** Waits long enough for a page on a loaded 2-core machine. */
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 20_000 });

let srv: ViewServer;
let browser: Browser | undefined;
let page: Page;

beforeAll(async () => {
  const dist = await buildViewer();
  srv = await startViewServer(dist, { title: 'test', run, compare, check }, 0);
  if (haveBrowser) {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (e) => {
      throw e;
    });
    mkdirSync(SHOTS, { recursive: true });
  }
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await srv?.close();
});

/** A raw request (no URL normalisation), with a chosen Host header. */
function raw(
  path: string,
  opts: { method?: string; host?: string } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: srv.port,
        path,
        method: opts.method ?? 'GET',
        headers: { host: opts.host ?? `127.0.0.1:${srv.port}` },
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('view server', () => {
  it('serves the page and the data on 127.0.0.1', async () => {
    expect(srv.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const index = await raw('/');
    expect(index.status).toBe(200);
    expect(index.body).toMatch(/<div id="app">/);
    expect(index.headers['content-security-policy']).toMatch(/default-src 'self'/);
    const data = await raw('/api/data?x=1');
    expect(data.status).toBe(200);
    expect(JSON.parse(data.body).check.case).toBe(check.case);
    expect((await raw('/', { host: `localhost:${srv.port}` })).status).toBe(200);
  });

  it('rejects other hosts, methods, and paths outside the build', async () => {
    expect((await raw('/', { host: 'evil.example' })).status).toBe(403);
    expect((await raw('/', { host: `127.0.0.1:${srv.port + 1}` })).status).toBe(403);
    expect((await raw('/api/data', { method: 'POST' })).status).toBe(405);
    expect((await raw('/api/data', { method: 'DELETE' })).status).toBe(405);
    for (const p of [
      '/../package.json',
      '/assets/../../package.json',
      '/%2e%2e/package.json',
      '/assets/..%2f..%2fpackage.json',
      '/assets/%2e%2e%5cserver.ts',
      '//etc/passwd',
      '/src/web/server.ts',
      '/package.json',
      '/%00',
      '/%E0%A4%A',
    ])
      expect([400, 404], p).toContain((await raw(p)).status);
    const head = await raw('/', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });
});

describe.skipIf(!haveBrowser)('web viewer in chromium', () => {
  it('address-space map: PMDs coloured by order, one PMD zoomed to its PTEs', async () => {
    await page.goto(srv.url + '#/map');
    const end = run.metrics.maps[run.metrics.maps.length - 1];
    const pmds = end.vmas.flatMap((v) => v.pmds);
    const cells = page.getByTestId('pmd-cell');
    await poll(() => cells.count()).toBe(pmds.length);
    const orders = await cells.evaluateAll((els) =>
      els.map((e) => Number(e.getAttribute('data-order'))),
    );
    expect(orders).toEqual(pmds.map((p) => p.order));
    const addrs = await cells.evaluateAll((els) => els.map((e) => e.getAttribute('data-addr')));
    expect(addrs).toEqual(pmds.map((p) => hexAddr(p.addr)));
    // The second PMD range of the heap: NR/8 pages written, then collapsed to one 256K mTHP.
    const heap = end.vmas.find((v) => v.name === 'heap')!;
    const second = heap.pmds[1];
    await page.locator(`[data-testid=pmd-cell][data-addr="${hexAddr(second.addr)}"]`).click();
    const panel = page.getByTestId('pte-panel');
    await expect
      .poll(() => panel.textContent())
      .toMatch(`PMD range ${hexAddr(second.addr)}: PTE-mapped, 512 PTEs`);
    expect(await page.getByTestId('pte-cell').count()).toBe(512);
    const none = second.ptes!.split('').filter((c) => c === PTE_NONE).length;
    expect(
      await page.locator('[data-testid=pte-count][data-state=none]').getAttribute('data-count'),
    ).toBe(String(none));
    await page.getByTestId('pte-cell').nth(3).hover();
    await expect
      .poll(() => page.getByTestId('pte-info').textContent())
      .toMatch(/PTE 3 .*folio pfn \d+ order 6 \(256K\)/);
    await page.screenshot({ path: join(SHOTS, 'map.png'), fullPage: true });
  });

  it('collapse explainer: steps through the order walk with buttons and arrow keys', async () => {
    await page.goto(srv.url + '#/explain');
    const idx = run.metrics.explain.findIndex((e) => e.vmaOffset === 2 * 1024 * 1024);
    const x = run.metrics.explain[idx];
    const replay = replayExplain(x);
    await page.getByTestId('explain-select').selectOption(String(idx));
    const counter = page.getByTestId('step-counter');
    await poll(() => counter.textContent()).toBe(`step 0 / ${replay.steps.length}`);
    const set = await page.locator('[data-testid=bit][data-set="1"]').count();
    expect(set).toBe(64);
    expect(await page.getByTestId('bit').count()).toBe(512);
    await page.getByTestId('step-next').click();
    await expect
      .poll(() => page.getByTestId('step-text').textContent())
      .toBe('order 9 (2M) at PTE 0: 64 occupied, needs 128: too sparse, skip');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await expect
      .poll(() => page.getByTestId('step-text').textContent())
      .toBe('order 6 (256K) at PTE 0: 64 occupied, needs 64: dense enough, try it');
    await page.getByTestId('step-next').click();
    await expect
      .poll(() => page.getByTestId('step-text').textContent())
      .toBe('order 6 (256K) at PTE 0: collapse_huge_page → SCAN_SUCCEED (collapsed)');
    await page.keyboard.press('ArrowLeft');
    await poll(() => counter.textContent()).toBe(`step 4 / ${replay.steps.length}`);
    await page.getByTestId('step-next').click();
    await page.screenshot({ path: join(SHOTS, 'explain.png'), fullPage: true });
    await page.getByTestId('step-last').click();
    await expect
      .poll(() => page.getByTestId('explain-result').textContent())
      .toBe('Result: SCAN_SUCCEED. Folios made: 256K at PTE 0');
    expect(replay.folios).toEqual([[0, 6]]);
    expect(await page.getByTestId('step').count()).toBe(replay.steps.length);
  });

  it('timeline: coverage, bloat and counters, and the compare overlay', async () => {
    await page.goto(srv.url + '#/timeline');
    const cov = page.getByTestId('chart-coverage');
    await poll(() => cov.locator('canvas').count()).toBe(1);
    const last = run.metrics.samples[run.metrics.samples.length - 1];
    const orders = Object.entries(last.byOrderKb).filter(([, kb]) => kb > 0).length;
    expect(Number(await cov.getAttribute('data-series'))).toBeGreaterThanOrEqual(orders);
    const cmp = page.getByTestId('chart-compare');
    expect(await cmp.getAttribute('data-series')).toBe(String(compare.runs.length));
    await expect
      .poll(() => page.getByTestId('compare-table').textContent())
      .toMatch(/v10-scaled8192/);
    expect(await page.getByTestId('chart-bloat').locator('canvas').count()).toBe(1);
    expect(await cov.getAttribute('data-unit')).toBe('kB');
    await page.getByTestId('coverage-pct').check();
    await poll(() => cov.getAttribute('data-unit')).toBe('%');
    await poll(() => cov.locator('canvas').count()).toBe(1);
    await page.screenshot({ path: join(SHOTS, 'timeline.png'), fullPage: true });
  });

  it('race trace: thread columns, entries and locks, the violating step highlighted', async () => {
    await page.goto(srv.url + '#/race');
    const rows = page.getByTestId('race-step');
    await poll(() => rows.count()).toBe(check.steps.length);
    expect(await page.getByTestId('thread').allTextContents()).toEqual(
      check.threads.map((t) => t.name),
    );
    const bad = page.locator('[data-testid=race-step][data-violation="1"]');
    expect(await bad.count()).toBe(1);
    expect(await bad.getAttribute('data-index')).toBe(String(check.violation.step));
    expect(await bad.getAttribute('class')).toMatch(/violation/);
    await page.getByTestId('race-violation').click();
    await expect
      .poll(() => page.getByTestId('race-counter').textContent())
      .toBe('step 10 (11 / 18)');
    await expect
      .poll(() => page.getByTestId('race-state').textContent())
      .toMatch('pmd[0x7f0000200000] = table(pte#13)');
    await page.keyboard.press('ArrowRight');
    await expect
      .poll(() => page.getByTestId('race-counter').textContent())
      .toBe('step 11 (12 / 18)');
    await page.getByTestId('race-prev').click();
    await page.screenshot({ path: join(SHOTS, 'race.png'), fullPage: true });
  });
});

describe('thpsim view', () => {
  it('serves a run file and stops cleanly on SIGINT', async () => {
    const child: ChildProcess = spawn(
      'node',
      [
        join(ROOT, 'bin/thpsim.js'),
        'view',
        join(ROOT, 'test/fixtures/check-trace-r1.json'),
        '--port',
        '0',
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    await expect.poll(() => out, { timeout: 30_000 }).toMatch(/http:\/\/127\.0\.0\.1:\d+\//);
    const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(out)![0];
    const res = await fetch(url + 'api/data');
    expect(res.status).toBe(200);
    expect(((await res.json()) as { check: CheckTrace }).check.violation.step).toBe(10);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(err).toMatch(/thpsim view: stopped/);
  });

  it('--scenario runs the scenario with metrics for the page', () => {
    const io = { out: () => {}, err: () => {}, color: false };
    const d = viewData(io, [join(ROOT, 'test/fixtures/check-trace-r1.json')], {
      scenario: 'mthp-creep',
      collapsePolicy: 'v10-scaled',
    });
    expect(d.title).toBe('check-trace-r1.json + mthp-creep');
    expect(d.run?.config.collapsePolicy).toBe('v10-scaled');
    expect(d.run?.metrics?.creep.length).toBeGreaterThan(0);
    expect(d.check?.violation.step).toBe(10);
    expect(() => viewData(io, [], { scenario: 'mthp-creep' })).not.toThrow();
    // A scenario file given as a positional argument is run, as --scenario runs it.
    const y = viewData(io, [join(ROOT, 'examples/mthp-creep.yaml')], {
      collapsePolicy: 'v10-scaled',
    });
    expect(y.title).toBe('mthp-creep.yaml');
    expect(y.run?.metrics?.creep.length).toBeGreaterThan(0);
    expect(() =>
      viewData(io, [join(ROOT, 'test/fixtures/check-trace-r1.json')], { scenario: 'x-nope' }),
    ).toThrow(/no such file/);
  });

  it('bad input: one line and exit 2', () => {
    expect(oneLineError(thpsim(['view', 'no-such-file.json']), 2)).toMatch(
      /no-such-file\.json: cannot read: no such file \(ENOENT\)/,
    );
    expect(oneLineError(thpsim(['view']), 2)).toMatch(/give result files/);
    expect(oneLineError(thpsim(['view', '--port', '70000']), 2)).toMatch(/port/);
  });
});
