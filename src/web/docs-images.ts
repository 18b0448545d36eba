// Regenerates the README's pictures with the project's own commands (npm run docs:images):
//   thpsim run mthp-creep --metrics --json -o run.json
//   thpsim compare mthp-creep --policies v19,v10-scaled,v11-cap --json -o cmp.json
//   thpsim report (the v10-scaled run)                  -> the coverage plot
//   thpsim report --scenario khugepaged-timeline        -> the PMD heat map
//   thpsim view run.json cmp.json test/fixtures/check-trace-r1.json, one screenshot per view
// Needs Debian's chromium (/usr/bin/chromium, or THPSIM_CHROMIUM).

import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OUT = join(ROOT, 'docs', 'img');
const tmp = mkdtempSync(join(tmpdir(), 'thpsim-docs-'));

function thpsim(args: string[]): void {
  execFileSync('node', [join(ROOT, 'bin/thpsim.js'), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const run = join(tmp, 'run.json');
  const creep = join(tmp, 'creep.json');
  const cmp = join(tmp, 'cmp.json');
  thpsim(['run', 'mthp-creep', '--metrics', '--json', '-o', run]);
  thpsim([
    'run',
    'mthp-creep',
    '--collapse-policy',
    'v10-scaled',
    '--metrics',
    '--json',
    '-o',
    creep,
  ]);
  thpsim(['compare', 'mthp-creep', '--policies', 'v19,v10-scaled,v11-cap', '--json', '-o', cmp]);
  thpsim(['report', creep, '-d', join(tmp, 'plots'), '--format', 'png']);
  copyFileSync(join(tmp, 'plots', 'coverage.png'), join(OUT, 'plot-coverage.png'));
  thpsim(['report', '--scenario', 'khugepaged-timeline', '-d', join(tmp, 'kt'), '--format', 'png']);
  copyFileSync(join(tmp, 'kt', 'heatmap.png'), join(OUT, 'plot-heatmap.png'));

  const fixture = join(ROOT, 'test', 'fixtures', 'check-trace-r1.json');
  const child: ChildProcess = spawn(
    'node',
    [join(ROOT, 'bin/thpsim.js'), 'view', run, cmp, fixture, '--port', '0'],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(out);
      if (m) resolve(m[0]);
    });
    child.on('exit', (code) => reject(new Error(`thpsim view exited with ${code}`)));
  });
  const browser = await chromium.launch({
    executablePath: process.env.THPSIM_CHROMIUM ?? '/usr/bin/chromium',
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
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 760 } });
    await page.goto(url + '#/map');
    await page.getByTestId('pmd-cell').nth(1).click();
    await page.screenshot({ path: join(OUT, 'view-map.png') });
    await page.goto(url + '#/explain');
    await page.getByTestId('explain-select').selectOption('1');
    for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowRight');
    await page.screenshot({ path: join(OUT, 'view-explain.png') });
    await page.goto(url + '#/timeline');
    await page.getByTestId('chart-coverage').locator('canvas').waitFor();
    await page.screenshot({ path: join(OUT, 'view-timeline.png') });
    await page.goto(url + '#/race');
    await page.getByTestId('race-violation').click();
    await page.screenshot({ path: join(OUT, 'view-race.png') });
  } finally {
    await browser.close();
    child.kill('SIGINT');
    rmSync(tmp, { recursive: true, force: true });
  }
  process.stdout.write(
    `wrote ${OUT}/{plot-coverage,plot-heatmap,view-map,view-explain,view-timeline,view-race}.png\n`,
  );
}

await main();
