/* The pathologist viewer: login, worklist, slide view with heatmap layers and regions (review.js
 * adds the review and drawing, report.js the report panel).
 * Everything comes from the histoplan API with the session cookie; state changes send the
 * session's CSRF token. Heatmap tiles arrive as 8-bit grey probabilities and are coloured here,
 * so the palette, threshold and opacity change without a new request. */
'use strict';

/* Okabe-Ito: distinguishable with the common colour-vision deficiencies. The same colours by
 * diagnostic category as the legends of analyze's pictures (pipeline/legend.c): in situ blue and
 * invasive vermillion, far apart, never orange beside vermillion. */
const PALETTE = {
  normal: [0, 158, 115], benign: [240, 228, 66], in_situ: [0, 114, 178],
  invasive: [213, 94, 0], uncertainty: [204, 121, 167], tissue: [86, 180, 233],
  'super-resolved': [0, 0, 0],
};
const FALLBACK = [[86, 180, 233], [230, 159, 0], [0, 0, 0]];

const hp = window.hp = { csrf: null, viewer: null, job: null, layers: [], regions: [],
  version: 1, ready: false, tilesLoaded: false };
const $ = (id) => document.getElementById(id);

async function api(method, path, body) {
  const opt = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    opt.headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body);
  }
  if (method !== 'GET' && hp.csrf) opt.headers['X-CSRF-Token'] = hp.csrf;
  const r = await fetch(path, opt);
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
  return { status: r.status, json, text };
}

function show(id) {
  for (const s of ['login', 'worklist', 'slide']) $(s).hidden = s !== id;
}

function text(el, t) { el.textContent = t; return el; }

/* ---- login ------------------------------------------------------------------------------- */

async function start() {
  const r = await api('GET', '/v1/session');
  if (r.status === 200 && r.json.csrf_token) return loggedIn(r.json);
  show('login');
  $('token').focus();
}

function loggedIn(who) {
  hp.csrf = who.csrf_token;
  text($('who'), who.name);
  $('logout').hidden = false;
  route();
}

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const r = await api('POST', '/v1/session', { token: $('token').value });
  $('token').value = '';
  if (r.status !== 201) {
    text($('login-error'), (r.json && r.json.detail) || 'login failed');
    return;
  }
  text($('login-error'), '');
  loggedIn(r.json);
});

$('logout').addEventListener('click', async () => {
  await api('DELETE', '/v1/session');
  hp.csrf = null;
  location.hash = '';
  location.reload();
});

/* ---- worklist ----------------------------------------------------------------------------- */

/* A job's report cell: the case's report status and its signed revision. */
function reportCell(rep) {
  if (!rep) return 'not built';
  return rep.revision > 0 ? rep.status + ', signed (rev. ' + rep.revision + ')' : 'draft, not signed';
}

function qcCell(row) {
  const parts = [];
  if (row.out_of_domain === true) parts.push('out of domain');
  if (row.super_resolution) parts.push('super-resolved');
  parts.push(...row.qc_flags.filter((f) => f !== 'out-of-domain'));
  if (row.state === 'succeeded' && row.out_of_domain === null) parts.push('domain unchecked');
  return parts.join(', ') || (row.state === 'succeeded' ? 'none' : '-');
}

async function worklist() {
  show('worklist');
  const st = $('state-filter').value;
  const r = await api('GET', '/v1/worklist' + (st ? '?state=' + encodeURIComponent(st) : ''));
  const body = $('jobs');
  body.replaceChildren();
  for (const j of (r.json && r.json.rows) || []) {
    const tr = document.createElement('tr');
    tr.tabIndex = 0;
    tr.dataset.job = j.job;
    const cells = [j.case || '-', j.slide_id || j.job, j.state,
      (j.report && j.report.category) || '-', qcCell(j), reportCell(j.report),
      (j.created || '').replace('T', ' ')];
    for (const v of cells) tr.appendChild(text(document.createElement('td'), v));
    if (j.out_of_domain === true || j.qc_flags.length) tr.classList.add('flagged');
    const open = () => { location.hash = '#/slide/' + j.job; };
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') open();
      if (e.key === 'ArrowDown' && tr.nextSibling) tr.nextSibling.focus();
      if (e.key === 'ArrowUp' && tr.previousSibling) tr.previousSibling.focus();
    });
    body.appendChild(tr);
  }
  hp.ready = true;
}
$('state-filter').addEventListener('change', worklist);
$('back').addEventListener('click', () => { location.hash = ''; });

/* ---- slide view --------------------------------------------------------------------------- */

const LAYER_LABELS = { mask: 'tissue (analysed tiles)', 'super-resolved': 'super-resolved tiles (not the scan)' };
function colourOf(name, i) { return PALETTE[name] || FALLBACK[i % FALLBACK.length]; }

/* Colours a heatmap tile from its grey values (kept on the tile's canvas the first time). */
function colourTile(e) {
  let layer = e.tiledImage.hpLayer;
  const nav = hp.viewer && hp.viewer.navigator;
  if (!layer && nav && e.eventSource === nav) { /* the navigator mirrors the main items in order */
    const main = hp.viewer.world.getItemAt(nav.world.getIndexOfItem(e.tiledImage));
    layer = main && main.hpLayer;
  }
  if (!layer) return;
  const ctx = e.rendered, cv = ctx.canvas;
  if (cv.hpVersion === hp.version) return;
  const w = cv.width, h = cv.height;
  if (!cv.hpGrey) cv.hpGrey = ctx.getImageData(0, 0, w, h).data.slice();
  const g = cv.hpGrey, out = ctx.createImageData(w, h), o = out.data;
  const [cr, cg, cb] = layer.colour, t = hp.threshold * 255;
  if (layer.kind === 'super-resolved') { /* hatched, so the tissue and the heatmaps show through */
    for (let i = 0; i < g.length; i += 4) {
      const x = (i / 4) % w, y = Math.floor(i / 4 / w);
      o[i] = cr; o[i + 1] = cg; o[i + 2] = cb;
      o[i + 3] = g[i + 3] && g[i] > 127 && (x + y) % 10 < 3 ? 255 : 0;
    }
    ctx.putImageData(out, 0, 0);
    cv.hpVersion = hp.version;
    return;
  }
  for (let i = 0; i < g.length; i += 4) {
    const v = g[i], a = g[i + 3];
    o[i] = cr; o[i + 1] = cg; o[i + 2] = cb;
    o[i + 3] = a && v >= t && v > 0 ? 64 + (v * 191) / 255 : 0;
  }
  ctx.putImageData(out, 0, 0);
  cv.hpVersion = hp.version;
}

function recolour() {
  hp.version++;
  if (!hp.viewer) return;
  hp.viewer.forceRedraw();
  if (hp.viewer.navigator) hp.viewer.navigator.forceRedraw();
}

function applyLayerOpacity() {
  for (const l of hp.layers) if (l.item) l.item.setOpacity(l.on ? hp.opacity : 0);
}

async function openSlide(id) {
  show('slide');
  hp.ready = false; hp.reviewReady = false; hp.tilesLoaded = false; hp.job = id;
  if (hp.viewer) { hp.viewer.destroy(); hp.viewer = null; }
  text($('slide-title'), id);
  hp.opacity = +$('opacity').value;
  hp.threshold = +$('threshold').value;
  const [meta, g] = await Promise.all([api('GET', '/v1/slides/' + id + '/heatmaps'),
                                        api('GET', '/v1/jobs/' + id + '/regions.geojson')]);
  hp.regions = g.status === 200 ? regionList(g.json) : [];
  hp.mpp = meta.json ? meta.json.mpp : null;
  hp.width = meta.json ? meta.json.width : null;
  hp.layers = [];
  const toggles = $('layer-toggles');
  toggles.replaceChildren();
  if (meta.status === 200) {
    meta.json.layers.forEach((l, i) => {
      /* Super-resolved tiles are marked from the start: the reader must see that they are not the scan. */
      const layer = { name: l.name, kind: l.kind, colour: colourOf(l.name, i),
        on: l.name === 'invasive' || l.kind === 'super-resolved', item: null };
      hp.layers.push(layer);
      const lab = document.createElement('label');
      const cb = document.createElement('input');
      cb.type = 'checkbox'; cb.checked = layer.on; cb.dataset.layer = l.name;
      cb.addEventListener('change', () => { layer.on = cb.checked; applyLayerOpacity(); });
      const sw = document.createElement('span');
      sw.className = 'swatch'; sw.style.background = 'rgb(' + layer.colour.join(',') + ')';
      lab.append(cb, sw, document.createTextNode(LAYER_LABELS[l.kind] || l.name.replace('_', ' ')));
      toggles.appendChild(lab);
    });
  } else {
    toggles.appendChild(text(document.createElement('p'), 'No heatmaps: the analysis has not succeeded.'));
  }
  /* The viewer is made once the layers are known, so that its 'open' handler is in place before
   * the slide can open (a slow heatmap list once let the slide open first, and no layer came). */
  const viewer = hp.viewer = OpenSeadragon({
    element: $('osd'), prefixUrl: '/viewer/images/', tileSources: '/v1/slides/' + id + '.dzi',
    showNavigator: true, navigatorPosition: 'TOP_RIGHT', showRotationControl: true,
    crossOriginPolicy: false, maxZoomPixelRatio: 2, animationTime: 0.6,
  });
  viewer.addHandler('tile-drawing', colourTile);
  if (viewer.navigator) viewer.navigator.addHandler('tile-drawing', colourTile);
  viewer.addHandler('update-viewport', drawOverlay);
  /* While a region is being drawn, a click adds a point instead of zooming. */
  viewer.addHandler('canvas-click', (e) => {
    if (!Review.drawing || !e.quick) return;
    e.preventDefaultAction = true;
    const p = slideItem().viewerElementToImageCoordinates(e.position);
    Review.addPoint(p.x, p.y);
  });
  viewer.world.addHandler('add-item', (e) => {
    e.item.addHandler('fully-loaded-change', () => { hp.tilesLoaded = allLoaded(); });
  });
  viewer.addOnceHandler('open', () => {
    for (const layer of hp.layers) {
      viewer.addTiledImage({
        tileSource: '/v1/slides/' + id + '/heatmaps/' + encodeURIComponent(layer.name) + '.dzi',
        opacity: layer.on ? hp.opacity : 0,
        success: (e) => { layer.item = e.item; e.item.hpLayer = layer; applyLayerOpacity(); },
      });
    }
    hp.ready = true;
    drawOverlay();
  });
  Review.target = null;
  await Promise.all([Review.load(id), ReportPanel.load(id)]);
  hp.reviewReady = true;
}

/* Every tiled image that is shown has all the tiles the view needs (hidden layers load none). */
function allLoaded() {
  if (!hp.viewer) return false;
  const w = hp.viewer.world;
  if (w.getItemCount() !== 1 + hp.layers.length) return false;
  for (let i = 0; i < w.getItemCount(); i++) {
    const it = w.getItemAt(i);
    if (it.getOpacity() > 0 && !it.getFullyLoaded()) return false;
  }
  return true;
}
hp.allLoaded = allLoaded;

/* ---- regions ------------------------------------------------------------------------------ */

function regionList(fc) {
  const regions = (fc.features || []).map((f) => {
    const p = f.properties || {}, m = p.measurements || {}, cls = (p.classification || {}).name || '?';
    const polys = f.geometry.type === 'MultiPolygon' ? f.geometry.coordinates : [f.geometry.coordinates];
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const poly of polys) for (const [x, y] of poly[0]) {
      x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
    }
    return { name: p.name || cls, cls, polys, bbox: [x0, y0, x1 - x0, y1 - y0],
      area: m['Area mm2'], diameter: m['Largest diameter mm'], mean: m['Mean probability'],
      colour: (p.classification && p.classification.color) || colourOf(cls, 0) };
  });
  /* The largest invasive focus first, then by area. */
  regions.sort((a, b) => ((b.cls === 'invasive') - (a.cls === 'invasive')) || (b.area || 0) - (a.area || 0));
  const ol = $('regions');
  ol.replaceChildren();
  regions.forEach((r, i) => {
    const li = document.createElement('li');
    li.tabIndex = 0;
    li.dataset.region = i;
    li.dataset.target = r.name;
    const f = (v, d) => (typeof v === 'number' ? v.toFixed(d) : '-');
    li.appendChild(text(document.createElement('span'), r.name + ' ' + r.cls.replace('_', ' ') + ': ' +
      f(r.area, 3) + ' mm², ' + f(r.diameter, 2) + ' mm, p ' + f(r.mean, 2)));
    const go = () => { flyTo(r); Review.select(r.name, 'Region ' + r.name + ' (' + r.cls.replace('_', ' ') + ')'); };
    li.addEventListener('click', go);
    li.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
    ol.appendChild(li);
  });
  return regions;
}

/* The slide's own tiled image: image coordinates are its level-0 pixels. */
function slideItem() { return hp.viewer.world.getItemAt(0); }

function flyTo(r) {
  const [x, y, w, h] = r.bbox, pad = Math.max(w, h) * 0.15;
  hp.viewer.viewport.fitBounds(slideItem().imageToViewportRectangle(x - pad, y - pad, w + 2 * pad, h + 2 * pad));
}

function drawOverlay() {
  const cv = $('region-canvas'), wrap = $('view-wrap');
  cv.width = wrap.clientWidth; cv.height = wrap.clientHeight;
  const ctx = cv.getContext('2d');
  ctx.clearRect(0, 0, cv.width, cv.height);
  if (!hp.viewer || !hp.viewer.world.getItemCount()) return;
  const item = slideItem();
  if ($('show-regions').checked) {
    ctx.lineWidth = 2;
    for (const r of hp.regions) {
      ctx.strokeStyle = 'rgb(' + r.colour.join(',') + ')';
      for (const poly of r.polys) {
        ctx.beginPath();
        for (const ring of poly) ring.forEach(([x, y], i) => {
          const p = item.imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y));
          if (i) ctx.lineTo(p.x, p.y); else ctx.moveTo(p.x, p.y);
        });
        ctx.stroke();
      }
    }
  }
  Review.drawOn(ctx, item);
  scaleBar();
}

/* A bar of a round length in µm or mm, about 120 screen pixels long. */
function scaleBar() {
  const bar = $('scalebar');
  if (!hp.mpp) { bar.hidden = true; return; }
  bar.hidden = false;
  const zoom = slideItem().viewportToImageZoom(hp.viewer.viewport.getZoom(true));
  const umPerPx = hp.mpp / zoom;
  let len = umPerPx * 120;
  const p = Math.pow(10, Math.floor(Math.log10(len)));
  len = [1, 2, 5, 10].map((m) => m * p).filter((v) => v <= len).pop() || p;
  $('scalebar-bar').style.width = (len / umPerPx) + 'px';
  text($('scalebar-text'), len >= 1000 ? (len / 1000) + ' mm' : len + ' µm');
}

$('opacity').addEventListener('input', () => {
  hp.opacity = +$('opacity').value; text($('opacity-out'), hp.opacity); applyLayerOpacity();
});
$('threshold').addEventListener('input', () => {
  hp.threshold = +$('threshold').value; text($('threshold-out'), hp.threshold); recolour();
});
$('show-regions').addEventListener('change', drawOverlay);
$('category-item').addEventListener('click', () => Review.select('category', $('category-label').textContent));
$('category-item').addEventListener('keydown', (e) => { if (e.key === 'Enter') Review.select('category', $('category-label').textContent); });
window.addEventListener('resize', drawOverlay);

/* ---- routing ------------------------------------------------------------------------------ */

function route() {
  const m = location.hash.match(/^#\/slide\/(j_[a-z2-7]{26})$/);
  if (m) openSlide(m[1]); else worklist();
}
window.addEventListener('hashchange', () => { if (hp.csrf) route(); });
document.addEventListener('DOMContentLoaded', start);
