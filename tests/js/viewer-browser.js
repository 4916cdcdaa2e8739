// Drives the pathologist viewer in Debian's chromium with playwright-core (run by
// tests/scripts/test_viewer_browser.py, which starts the server and checks the results).
// Input: environment HP_URL, HP_TOKEN, HP_JOB, HP_POINT ("x,y": a level-0 point the ground
// truth calls invasive), HP_OUT (screenshots), HP_DOCS (the committed screenshots' folder).
// Output: one JSON line of measurements on stdout.
'use strict';
const { chromium } = require('playwright-core');
const path = require('path');

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(k + ' is not set'); return v; };

(async () => {
  const url = env('HP_URL'), job = env('HP_JOB'), out = env('HP_OUT'), docs = env('HP_DOCS');
  const [px, py] = env('HP_POINT').split(',').map(Number);
  const res = { console_errors: [], csp_violations: 0 };
  const browser = await chromium.launch({
    executablePath: process.env.HP_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--force-device-scale-factor=1'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1400, height: 860 } });
    const page = await context.newPage();
    // Console errors count from login to logout (before login the page asks whether a session
    // exists and gets 401; at the end the test makes refused requests on purpose).
    let watching = false;
    page.on('console', (m) => {
      if (m.type() === 'error' && watching) res.console_errors.push(m.text());
      if (/Content Security Policy/i.test(m.text())) res.csp_violations++;
    });
    const t0 = Date.now();
    await page.goto(url + '/viewer/');
    await page.waitForSelector('#login-form', { state: 'visible' });
    await page.fill('#token', env('HP_TOKEN'));
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector(`tr[data-job="${job}"]`, { timeout: 30000 });
    watching = true;
    res.worklist_rows = await page.locator('#jobs tr').count();
    await page.screenshot({ path: path.join(docs, 'viewer-worklist.png') });
    const cookies = await context.cookies();
    const c = cookies.find((x) => x.name === 'hp_session') || {};
    res.cookie = { httpOnly: c.httpOnly, sameSite: c.sameSite, present: !!c.value };
    res.cookie_visible_to_script = await page.evaluate(() => document.cookie.includes('hp_session'));

    // Keyboard: the first row takes focus and Enter opens it.
    await page.focus(`tr[data-job="${job}"]`);
    const tOpen = Date.now();
    await page.keyboard.press('Enter');
    try {
      await page.waitForFunction(() => window.hp.ready && window.hp.allLoaded(), null, { timeout: 90000 });
    } catch (e) {
      const st = await page.evaluate(() => ({ ready: window.hp.ready, loaded: window.hp.tilesLoaded,
        items: window.hp.viewer && window.hp.viewer.world.getItemCount(), layers: window.hp.layers.length }));
      console.error('the slide did not load: ' + JSON.stringify(st) + ' console: ' + res.console_errors.slice(0, 5).join(' | '));
      throw e;
    }
    res.first_screen_ms = Date.now() - tOpen;
    res.login_to_tiles_ms = Date.now() - t0;
    res.layers = await page.evaluate(() => window.hp.layers.map((l) => l.name));
    res.regions = await page.evaluate(() => window.hp.regions.length);
    res.scalebar = await page.textContent('#scalebar-text');

    // Centre the invasive point, zoomed so that one analysed tile fills a good part of the view.
    await page.evaluate(([x, y]) => {
      const vp = window.hp.viewer.viewport, item = window.hp.viewer.world.getItemAt(0);
      vp.panTo(item.imageToViewportCoordinates(x, y), true);
      vp.zoomTo(vp.getZoom(true) * 2, null, true);
    }, [px, py]);
    await page.waitForTimeout(300);
    await page.waitForFunction(() => window.hp.allLoaded(), null, { timeout: 60000 });
    await page.waitForTimeout(500);
    const at = await page.evaluate(([x, y]) => {
      const item = window.hp.viewer.world.getItemAt(0);
      const p = item.imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y));
      const r = document.getElementById('osd').getBoundingClientRect();
      return [Math.round(r.left + p.x), Math.round(r.top + p.y)];
    }, [px, py]);
    res.point_on_screen = at;
    res.debug = await page.evaluate(() => {
      const r = document.getElementById('osd').getBoundingClientRect(), v = window.hp.viewer;
      const b = v.world.getItemAt(0).getBounds();
      return { osd: [r.left, r.top, r.width, r.height], zoom: v.viewport.getZoom(true),
        bounds: [b.x, b.y, b.width, b.height], n: v.world.getItemCount(),
        cv: [v.drawer.canvas.width, v.drawer.canvas.height],
        css: ['slide', 'view-wrap', 'osd'].map((id) => { const c = getComputedStyle(document.getElementById(id));
          return id + ':' + c.display + ',' + c.height + ',' + c.position + ',' + c.flexGrow; }) };
    });
    await page.screenshot({ path: path.join(out, 'heatmap-on.png') });
    await page.screenshot({ path: path.join(docs, 'viewer-slide-heatmap.png') });

    // The invasive layer off: the same place shows the tissue alone.
    await page.uncheck('input[data-layer="invasive"]');
    await page.waitForTimeout(700);
    await page.screenshot({ path: path.join(out, 'heatmap-off.png') });
    await page.check('input[data-layer="invasive"]');

    // The threshold at 1: nothing under it is coloured, without a new request.
    let tileRequests = 0;
    page.on('request', (rq) => { if (rq.url().includes('/heatmaps/')) tileRequests++; });
    await page.fill('#threshold', '1');
    await page.dispatchEvent('#threshold', 'input');
    await page.waitForTimeout(700);
    await page.screenshot({ path: path.join(out, 'threshold-1.png') });
    res.heatmap_requests_on_threshold = tileRequests;
    await page.fill('#threshold', '0.5');
    await page.dispatchEvent('#threshold', 'input');

    // The region list: the first entry (the largest invasive focus) flies there.
    const target = await page.evaluate(() => {
      const r = window.hp.regions[0];
      return { cls: r.cls, cx: r.bbox[0] + r.bbox[2] / 2, cy: r.bbox[1] + r.bbox[3] / 2 };
    });
    await page.evaluate(() => { const vp = window.hp.viewer.viewport; vp.zoomTo(vp.getHomeZoom() * 4, null, true); vp.panTo(new OpenSeadragon.Point(0.05, 0.05), true); });
    await page.click('#regions li[data-region="0"]');
    await page.waitForTimeout(2000);
    const centre = await page.evaluate(() => {
      const vp = window.hp.viewer.viewport, item = window.hp.viewer.world.getItemAt(0);
      const c = item.viewportToImageCoordinates(vp.getCenter(true));
      return [c.x, c.y];
    });
    res.fly = { target, centre };
    await page.screenshot({ path: path.join(docs, 'viewer-region.png') });

    watching = false;
    // A change with the session cookie but a wrong CSRF token, then the right one.
    res.wrong_csrf_status = await page.evaluate(async () =>
      (await fetch('/v1/session', { method: 'DELETE', headers: { 'X-CSRF-Token': 'wrong' } })).status);
    res.no_csrf_status = await page.evaluate(async () => (await fetch('/v1/session', { method: 'DELETE' })).status);
    await page.click('#logout');
    await page.waitForSelector('#login-form', { state: 'visible' });
    res.after_logout_status = await page.evaluate(async () => (await fetch('/v1/session')).status);
    res.after_logout_tile = await page.evaluate(async (j) => (await fetch('/v1/slides/' + j + '.dzi')).status, job);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(res));
})().catch((e) => { console.error(e); process.exit(1); });
