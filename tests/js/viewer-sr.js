// A super-resolved analysis in the viewer, in Debian's chromium with playwright-core (run by
// tests/scripts/test_viewer_sr.py). Input: environment HP_URL, HP_TOKEN (a pathologist), HP_JOB
// (a job analyzed with super_resolution auto), HP_PLAIN_JOB (one analyzed without), HP_OUT
// (screenshots), HP_DOCS (the committed screenshot's folder).
// Output: one JSON line of what it saw on stdout; the Python side checks it.
'use strict';
const { chromium } = require('playwright-core');
const path = require('path');

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(k + ' is not set'); return v; };

async function openJob(page, job) {
  await page.click(`tr[data-job="${job}"]`);
  await page.waitForFunction(() => window.hp.ready && window.hp.reviewReady && window.hp.allLoaded(), null, { timeout: 90000 });
  await page.waitForTimeout(700);
}

const layers = (page) => page.$$eval('#layer-toggles label', (ls) => ls.map((l) => {
  const cb = l.querySelector('input');
  return { name: cb.dataset.layer, on: cb.checked, label: l.textContent };
}));

(async () => {
  const url = env('HP_URL'), job = env('HP_JOB'), plain = env('HP_PLAIN_JOB'), out = env('HP_OUT'), docs = env('HP_DOCS');
  const res = { console_errors: [] };
  const browser = await chromium.launch({
    executablePath: process.env.HP_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--force-device-scale-factor=1'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1600, height: 900 } });
    const page = await context.newPage();
    let watching = false;
    page.on('console', (m) => { if (m.type() === 'error' && watching) res.console_errors.push(m.text()); });
    page.on('pageerror', (e) => res.console_errors.push(e.message));
    await page.goto(url + '/viewer/');
    await page.waitForSelector('#login-form', { state: 'visible' });
    await page.fill('#token', env('HP_TOKEN'));
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#jobs tr', { timeout: 30000 });
    watching = true;
    res.worklist_head = await page.$$eval('#worklist th', (ths) => ths.map((th) => th.textContent));
    res.worklist_sr = await page.$$eval(`tr[data-job="${job}"] td`, (tds) => tds.map((td) => td.textContent));
    res.worklist_plain = await page.$$eval(`tr[data-job="${plain}"] td`, (tds) => tds.map((td) => td.textContent));

    // The plain job first: no warning, no super-resolved layer.
    await openJob(page, plain);
    res.plain_warning = await page.evaluate(() => { const w = document.getElementById('slide-warning'); return w.hidden ? '' : w.textContent; });
    res.plain_layers = await layers(page);
    await page.click('#back');
    await page.waitForSelector(`tr[data-job="${job}"]`, { state: 'visible' });

    await openJob(page, job);
    res.warning = await page.evaluate(() => { const w = document.getElementById('slide-warning'); return w.hidden ? '' : w.textContent; });
    res.layers = await layers(page);
    // Only the super-resolved marks change between the two pictures.
    if (await page.isChecked('input[data-layer="invasive"]')) await page.uncheck('input[data-layer="invasive"]');
    await page.waitForTimeout(700);
    res.osd = await page.evaluate(() => { const r = document.getElementById('osd').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; });
    await page.screenshot({ path: path.join(out, 'sr-on.png') });
    await page.screenshot({ path: path.join(docs, 'viewer-super-resolved.png') });
    await page.uncheck('input[data-layer="super-resolved"]');
    await page.waitForTimeout(700);
    await page.screenshot({ path: path.join(out, 'sr-off.png') });
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(res));
})().catch((e) => { console.error(e); process.exit(1); });
