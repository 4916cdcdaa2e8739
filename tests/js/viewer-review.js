// The viewer's review, report panel and worklist columns in Debian's chromium with
// playwright-core (run by tests/scripts/test_viewer_browser.py after viewer-browser.js).
// Input: environment HP_URL, HP_TOKEN (the first pathologist), HP_TOKEN2 (a second one), HP_JOB,
// HP_PASSPHRASE (the first pathologist's signing key's), HP_OOD_JOB (optional: a job whose slide is
// outside the model's domain),
// HP_OUT (screenshots), HP_DOCS (the committed screenshots' folder).
// Output: one JSON line of what it saw on stdout; the Python side checks it.
'use strict';
const { chromium } = require('playwright-core');
const path = require('path');

const env = (k) => { const v = process.env[k]; if (!v) throw new Error(k + ' is not set'); return v; };

async function login(browser, url, token, res, who) {
  const context = await browser.newContext({ viewport: { width: 1600, height: 900 } });
  const page = await context.newPage();
  // Errors count once logged in (before, the page asks whether a session exists and gets 401)
  // and until the refusals made on purpose.
  page.watching = false;
  page.on('console', (m) => { if (m.type() === 'error' && page.watching) res.console_errors.push(who + ': ' + m.text()); });
  page.on('pageerror', (e) => res.console_errors.push(who + ': ' + e.message));
  await page.goto(url + '/viewer/');
  await page.waitForSelector('#login-form', { state: 'visible' });
  await page.fill('#token', token);
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#jobs tr', { timeout: 30000 });
  page.watching = true;
  return page;
}

async function openJob(page, job) {
  await page.click(`tr[data-job="${job}"]`);
  await page.waitForFunction(() => window.hp.ready && window.hp.reviewReady && window.hp.allLoaded(), null, { timeout: 90000 });
}

async function select(page, selector) {
  await page.click(selector);
  await page.waitForSelector('#review-panel:not([hidden])');
}

/* Clicks a decision button and waits until the server's answer is shown. */
async function decide(page, button, comment) {
  if (comment !== undefined) await page.fill('#review-comment', comment);
  await page.click(button);
  await page.waitForFunction((b) => document.querySelector(b).getAttribute('aria-pressed') === 'true', button, { timeout: 10000 });
}

const mine = (page) => page.evaluate(() => window.Review.data.decisions
  .filter((d) => d.author.id === window.Review.data.you)
  .map((d) => ({ target: d.target, decision: d.decision, comment: d.comment }))
  .sort((a, b) => a.target.localeCompare(b.target)));

(async () => {
  const url = env('HP_URL'), job = env('HP_JOB'), out = env('HP_OUT'), docs = env('HP_DOCS');
  const res = { console_errors: [] };
  const browser = await chromium.launch({
    executablePath: process.env.HP_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--force-device-scale-factor=1'],
  });
  try {
    // ---- the first pathologist -------------------------------------------------------------
    const a = await login(browser, url, env('HP_TOKEN'), res, 'A');
    res.worklist_row = await a.$$eval(`tr[data-job="${job}"] td`, (tds) => tds.map((td) => td.textContent));
    res.worklist_head = await a.$$eval('#worklist th', (ths) => ths.map((th) => th.textContent));
    await a.screenshot({ path: path.join(docs, 'viewer-worklist.png') });
    await openJob(a, job);

    // The report panel.
    res.report = await a.evaluate(() => ({
      status: document.getElementById('report-status').textContent,
      category: document.querySelector('#report-body .category') && document.querySelector('#report-body .category').textContent,
      side_category: document.getElementById('category-text').textContent,
      statements: document.querySelectorAll('#report-body .statement').length,
      links: [...document.querySelectorAll('#report-body a.region-link')].map((x) => x.dataset.region),
      suggestions: document.querySelectorAll('#report-body .suggestion').length,
      approvals: [...document.querySelectorAll('#report-body .approval')].map((x) => x.textContent),
    }));
    // A region link in a statement flies to the region and opens it for review.
    if (res.report.links.length) {
      const id = res.report.links[0];
      await a.evaluate(() => { const vp = window.hp.viewer.viewport; vp.zoomTo(vp.getHomeZoom() * 4, null, true); vp.panTo(new OpenSeadragon.Point(0.02, 0.02), true); });
      await a.click(`#report-body a.region-link[data-region="${id}"]`);
      await a.waitForTimeout(2000);
      res.link = await a.evaluate((rid) => {
        const r = window.hp.regions.find((x) => x.name === rid);
        const vp = window.hp.viewer.viewport, item = window.hp.viewer.world.getItemAt(0);
        const c = item.viewportToImageCoordinates(vp.getCenter(true));
        return { region: rid, target: window.Review.target && window.Review.target.id, bbox: r && r.bbox, centre: [c.x, c.y] };
      }, id);
    }

    res.ood = { shown_on_generated: !(await a.isHidden('#slide-warning')) };

    // Accept the first region, reject the second with a comment, accept the category.
    const names = await a.evaluate(() => window.hp.regions.map((r) => r.name));
    res.regions = names;
    await select(a, '#regions li[data-region="0"]');
    await decide(a, '#review-accept');
    await select(a, '#regions li[data-region="1"]');
    await decide(a, '#review-reject', 'not convincing at this magnification');
    await select(a, '#category-item');
    await decide(a, '#review-accept');

    // Draw a region: four clicks around the view's centre, then Finish.
    await a.evaluate(() => { const vp = window.hp.viewer.viewport; vp.goHome(true); });
    await a.waitForTimeout(500);
    const box = await a.evaluate(() => { const r = document.getElementById('osd').getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; });
    const cx = box[0] + box[2] / 2, cy = box[1] + box[3] / 2;
    await a.click('#draw-start');
    await a.selectOption('#draw-class', 'invasive');
    await a.fill('#draw-comment', 'focus the model missed');
    const zoomBefore = await a.evaluate(() => window.hp.viewer.viewport.getZoom(true));
    for (const [dx, dy] of [[-60, -40], [60, -40], [70, 50], [-50, 60]]) {
      await a.mouse.click(cx + dx, cy + dy);
      await a.waitForTimeout(150);
    }
    res.zoom_kept_while_drawing = Math.abs((await a.evaluate(() => window.hp.viewer.viewport.getZoom(true))) - zoomBefore) < 1e-9;
    await a.click('#draw-finish');
    await a.waitForFunction(() => window.Review.data.annotations.length === 1, null, { timeout: 10000 });
    res.drawn = await a.evaluate(() => window.Review.data.annotations.map((x) => ({ id: x.id, class: x.class,
      points: x.geometry.coordinates[0].length, author: x.author.name, comment: x.comment })));
    await a.waitForTimeout(500);
    await a.screenshot({ path: path.join(out, 'review.png') });
    await a.screenshot({ path: path.join(docs, 'viewer-review.png') });
    res.before_reload = await mine(a);

    // Reload: everything comes back from the server.
    await a.reload();
    await a.waitForFunction(() => window.hp.ready && window.hp.reviewReady && window.hp.allLoaded(), null, { timeout: 90000 });
    res.after_reload = await mine(a);
    await select(a, '#regions li[data-region="0"]');
    res.after_reload_pressed = await a.getAttribute('#review-accept', 'aria-pressed');
    res.after_reload_annotations = await a.evaluate(() => window.Review.data.annotations.length);

    // ---- a second pathologist ------------------------------------------------------------------
    const b = await login(browser, url, env('HP_TOKEN2'), res, 'B');
    await openJob(b, job);
    res.second_marks = await b.$$eval('#regions li', (lis) => lis.map((li) => ({ target: li.dataset.target,
      marks: (li.querySelector('.marks') || {}).textContent || '' })));
    await select(b, '#regions li[data-region="1"]');
    res.second_panel = await b.$$eval('#review-others li', (lis) => lis.map((li) => li.textContent));
    res.second_pressed = await b.getAttribute('#review-reject', 'aria-pressed');
    // The second pathologist rejects the drawn region; they cannot delete it (the button is
    // not offered, and the API refuses).
    await select(b, '#drawn li');
    res.second_delete_offered = !(await b.isHidden('#review-delete'));
    await decide(b, '#review-reject', 'artefact');
    const aid = res.drawn[0].id;
    b.watching = false;
    res.second_delete_status = await b.evaluate(async ([j, id]) => {
      const s = await (await fetch('/v1/session')).json();
      return (await fetch('/v1/jobs/' + j + '/annotations/' + id, { method: 'DELETE', headers: { 'X-CSRF-Token': s.csrf_token } })).status;
    }, [job, aid]);
    res.wrong_csrf_put = await b.evaluate(async (j) => (await fetch('/v1/jobs/' + j + '/review/category', {
      method: 'PUT', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': 'wrong' },
      body: JSON.stringify({ decision: 'reject' }) })).status, job);
    res.no_session_put = await b.evaluate(async (j) => (await fetch('/v1/jobs/' + j + '/review/category', {
      method: 'PUT', credentials: 'omit', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ decision: 'reject' }) })).status, job);

    // The first pathologist sees the second's decision on their drawn region, attributed.
    await a.reload();
    await a.waitForFunction(() => window.hp.ready && window.hp.reviewReady, null, { timeout: 90000 });
    await select(a, '#drawn li');
    res.first_sees = await a.$$eval('#review-others li', (lis) => lis.map((li) => li.textContent));

    // Signing from the report panel: a wrong passphrase is refused and named; the right one
    // signs, and the panel shows the signed revision.
    res.sign_form_shown = !(await a.isHidden('#sign-form'));
    a.watching = false;
    await a.fill('#sign-passphrase', 'not my passphrase');
    await a.click('#sign-form button[type=submit]');
    await a.waitForFunction(() => document.getElementById('sign-error').textContent.length > 0, null, { timeout: 30000 });
    res.sign_wrong = await a.textContent('#sign-error');
    a.watching = true;
    await a.fill('#sign-passphrase', env('HP_PASSPHRASE'));
    await a.click('#sign-form button[type=submit]');
    await a.waitForFunction(() => /signed by/.test(document.getElementById('report-status').textContent), null, { timeout: 60000 });
    res.signed_status = await a.textContent('#report-status');
    res.sign_form_after = !(await a.isHidden('#sign-form'));
    res.signed_category = (await a.textContent('#category-label')) + ': ' + (await a.textContent('#category-text'));
    await a.screenshot({ path: path.join(docs, 'viewer-signed.png') });

    // A slide outside the model's domain: said over the slide, and in the worklist.
    const ood = process.env.HP_OOD_JOB;
    if (ood) {
      await a.click('#back');
      await a.waitForSelector(`tr[data-job="${ood}"]`);
      res.ood.worklist_qc = await a.textContent(`tr[data-job="${ood}"] td:nth-child(5)`);
      await openJob(a, ood);
      res.ood.shown = !(await a.isHidden('#slide-warning'));
      res.ood.warning = await a.textContent('#slide-warning');
      res.ood.category = await a.textContent('#category-text');
      await a.screenshot({ path: path.join(docs, 'viewer-out-of-domain.png') });
    }
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(res));
})().catch((e) => { console.error(e); process.exit(1); });
