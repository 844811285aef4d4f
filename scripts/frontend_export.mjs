// Exports UI-format workflows to API format with ComfyUI's OWN web frontend (`app.graphToPrompt()`),
// the reference `comfyctl convert` is measured against. Used by scripts/compare_frontend.sh; not
// part of the test suite.
//
//   node scripts/frontend_export.mjs COMFY_URL OUT_DIR UI.json...
//
// Writes OUT_DIR/<name>.api.json (the `output` of graphToPrompt, i.e. what "Export (API)" saves)
// for every input file (<name> without .json/.ui), and OUT_DIR/<name>.log (only when non-empty)
// with the console warnings/errors and any toast
// the frontend showed while loading it (missing nodes, fixed bad links). A file the frontend
// cannot load gets OUT_DIR/<name>.error instead.
//
// Prerequisites (none of them are project dependencies):
//   * a running ComfyUI whose web frontend is the one to measure (e.g. 0.3.64 with frontend 1.27.10);
//   * a Chromium binary: CHROMIUM=/usr/bin/chromium by default (Debian: apt-get install chromium);
//   * playwright-core, resolved from NODE_PATH or the current directory
//     (e.g. `npm install --prefix /tmp/gold-js playwright-core` and NODE_PATH=/tmp/gold-js/node_modules).
//
// FRONTEND_NOW=2026-03-04T05:06:07Z fixes the page's clock (`new Date()`, which the frontend's
// `%date:FMT%` replacement reads) and FRONTEND_TZ=UTC its time zone, so that an export with dates
// is reproducible (tests/fixtures/frontend/fe08_date was made that way).
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { tmpdir } from 'node:os';

const require = createRequire(join(process.cwd(), 'noop.js'));
let chromium;
try {
  ({ chromium } = require('playwright-core'));
} catch {
  const paths = (process.env.NODE_PATH || '').split(':').filter(Boolean);
  ({ chromium } = require(require.resolve('playwright-core', { paths })));
}

const [url, outDir, ...files] = process.argv.slice(2);
if (!url || !outDir || files.length === 0) {
  console.error('usage: node frontend_export.mjs COMFY_URL OUT_DIR UI.json...');
  process.exit(2);
}

const profile = mkdtempSync(join(tmpdir(), 'comfy-frontend-'));
// A fresh profile every run (playwright passes it as --user-data-dir).
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  ...(process.env.FRONTEND_TZ ? { timezoneId: process.env.FRONTEND_TZ } : {}),
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
let exitCode = 0;
try {
  const page = await browser.newPage();
  if (process.env.FRONTEND_NOW) {
    // Only Date is faked; timers keep running, so the app loads as usual.
    await page.clock.setFixedTime(new Date(process.env.FRONTEND_NOW));
  }
  let log = [];
  page.on('console', (m) => {
    if (m.type() === 'warning' || m.type() === 'error') log.push(`[${m.type()}] ${m.text()}`);
  });
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  page.on('dialog', (d) => {
    log.push(`[dialog] ${d.message()}`);
    d.dismiss().catch(() => {});
  });
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  // The app is ready when the ComfyApp exists and the server's node classes are registered.
  await page.waitForFunction(
    () =>
      window.app?.graph &&
      typeof window.app.graphToPrompt === 'function' &&
      window.LiteGraph?.registered_node_types?.KSampler,
    null,
    { timeout: 120_000 },
  );
  // Record toasts (missing nodes, `fixBadLinks` repairs) instead of letting them pile up.
  await page.evaluate(() => {
    window.__toasts = [];
    const t = window.app.extensionManager?.toast;
    if (t?.add) {
      const add = t.add.bind(t);
      t.add = (msg) => {
        window.__toasts.push(JSON.stringify(msg));
        return add(msg);
      };
    }
  });
  let done = 0;
  for (const file of files) {
    const name = basename(file).replace(/\.json$/, '').replace(/\.ui$/, '');
    log = [];
    try {
      const wf = JSON.parse(readFileSync(file, 'utf8'));
      const api = await page.evaluate(async (wf) => {
        window.__toasts = [];
        await window.app.loadGraphData(wf, true, true, null, {
          showMissingNodesDialog: false,
          showMissingModelsDialog: false,
        });
        const p = await window.app.graphToPrompt();
        return { output: p.output, toasts: window.__toasts };
      }, wf);
      writeFileSync(join(outDir, `${name}.api.json`), JSON.stringify(api.output, null, 2) + '\n');
      for (const t of api.toasts) log.push(`[toast] ${t}`);
      if (log.length) writeFileSync(join(outDir, `${name}.log`), log.join('\n') + '\n');
      done++;
    } catch (e) {
      exitCode = 1;
      writeFileSync(join(outDir, `${name}.error`), `${e.stack || e}\n${log.join('\n')}\n`);
      console.error(`${name}: ${String(e.message || e).split('\n')[0]}`);
    }
  }
  console.error(`exported ${done} of ${files.length} workflow(s) to ${outDir}`);
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(exitCode);
