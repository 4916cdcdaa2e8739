/* Review in the viewer: the logged-in pathologist's decisions (accept, reject, comment) on the
 * suggested category, the model's regions and drawn regions, and regions drawn on the slide.
 * Everything is stored by the server per pathologist (GET /v1/jobs/{id}/review, PUT
 * /v1/jobs/{id}/review/{target}, POST and DELETE /v1/jobs/{id}/annotations), never in the
 * browser; everyone's decisions are shown with their author's name. Loaded before viewer.js,
 * which calls Review.load when a slide opens and Review.drawOn when it draws its overlay. */
'use strict';

const Review = window.Review = {
  job: null,
  data: { decisions: [], annotations: [], you: null },
  target: null,     /* {id, label} of the thing under review */
  drawing: null,    /* level-0 points while a region is being drawn */
};

const DECISION_WORD = { accept: 'accepted', reject: 'rejected' };

Review.decisionsOn = (t) => Review.data.decisions.filter((d) => d.target === t);
Review.mine = (t) => Review.decisionsOn(t).find((d) => d.author.id === Review.data.you);

Review.load = async function (job) {
  Review.job = job;
  const r = await api('GET', '/v1/jobs/' + job + '/review');
  Review.data = r.status === 200 ? r.json : { decisions: [], annotations: [], you: null };
  Review.loaded = r.status === 200;
  Review.render();
};

Review.render = function () {
  Review.renderMarks();
  Review.renderDrawn();
  Review.renderPanel();
  if (typeof drawOverlay === 'function') drawOverlay();
};

/* A short summary beside each reviewable item: "you ✓ · Dr B ✗ (comment)". */
function marksOf(target) {
  const parts = Review.decisionsOn(target).map((d) => {
    const who = d.author.id === Review.data.you ? 'you' : d.author.name;
    const sym = d.decision === 'accept' ? '✓' : d.decision === 'reject' ? '✗' : '…';
    return who + ' ' + sym + (d.comment ? ' (comment)' : '');
  });
  return parts.join(' · ');
}

Review.renderMarks = function () {
  for (const el of document.querySelectorAll('[data-target]')) {
    let m = el.querySelector('.marks');
    if (!m) { m = document.createElement('span'); m.className = 'marks'; el.appendChild(m); }
    m.textContent = marksOf(el.dataset.target);
  }
};

/* Drawn regions: listed under the model's, selectable for review like them. */
Review.renderDrawn = function () {
  const ol = $('drawn');
  ol.replaceChildren();
  for (const a of Review.data.annotations) {
    const li = document.createElement('li');
    li.tabIndex = 0;
    li.dataset.target = a.id;
    li.appendChild(text(document.createElement('span'), a.class.replace('_', ' ') + ', drawn by ' +
      (a.author.id === Review.data.you ? 'you' : a.author.name) + (a.comment ? ': ' + a.comment : '')));
    const go = () => { Review.select(a.id, 'Drawn region (' + a.class.replace('_', ' ') + ')'); flyToRing(a.geometry.coordinates[0]); };
    li.addEventListener('click', go);
    li.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
    ol.appendChild(li);
  }
  $('drawn-none').hidden = Review.data.annotations.length > 0;
  Review.renderMarks();
};

function flyToRing(ring) {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of ring) { x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y); }
  flyTo({ bbox: [x0, y0, x1 - x0, y1 - y0] });
}

Review.select = function (id, label) {
  Review.target = { id, label };
  Review.renderPanel();
};

/* The panel: the selected item, the caller's decision and comment, everyone else's. */
Review.renderPanel = function () {
  const t = Review.target, panel = $('review-panel');
  panel.hidden = !t;
  if (!t) return;
  text($('review-target'), t.label);
  const mine = Review.mine(t.id);
  for (const d of ['accept', 'reject']) {
    const b = $('review-' + d);
    b.setAttribute('aria-pressed', String(!!mine && mine.decision === d));
  }
  $('review-comment').value = (mine && mine.comment) || '';
  const own = $('review-delete');
  const drawn = Review.data.annotations.find((a) => a.id === t.id);
  own.hidden = !(drawn && drawn.author.id === Review.data.you);
  const ul = $('review-others');
  ul.replaceChildren();
  for (const d of Review.decisionsOn(t.id)) {
    const who = d.author.id === Review.data.you ? 'You' : d.author.name;
    const li = text(document.createElement('li'), who + ': ' + (DECISION_WORD[d.decision] || 'commented') +
      (d.comment ? ' — ' + d.comment : '') + ' (' + new Date(d.updated_ms).toISOString().slice(0, 16).replace('T', ' ') + ' UTC)');
    li.dataset.author = d.author.name;
    li.dataset.decision = d.decision || '';
    ul.appendChild(li);
  }
  text($('review-error'), '');
};

async function saveDecision(decision) {
  const t = Review.target;
  if (!t) return;
  const comment = $('review-comment').value.trim();
  const r = await api('PUT', '/v1/jobs/' + Review.job + '/review/' + encodeURIComponent(t.id),
    { decision, comment: comment || null });
  if (r.status !== 200) {
    text($('review-error'), (r.json && r.json.detail) || 'not saved (' + r.status + ')');
    return;
  }
  await Review.load(Review.job);
}

/* A pressed Accept or Reject pressed again withdraws the decision (the comment stays). */
function toggle(decision) {
  const mine = Review.target && Review.mine(Review.target.id);
  return saveDecision(mine && mine.decision === decision ? null : decision);
}

$('review-accept').addEventListener('click', () => toggle('accept'));
$('review-reject').addEventListener('click', () => toggle('reject'));
$('review-save').addEventListener('click', () => {
  const mine = Review.target && Review.mine(Review.target.id);
  return saveDecision(mine ? mine.decision : null);
});
$('review-delete').addEventListener('click', async () => {
  const t = Review.target;
  const r = await api('DELETE', '/v1/jobs/' + Review.job + '/annotations/' + encodeURIComponent(t.id));
  if (r.status !== 204) { text($('review-error'), (r.json && r.json.detail) || 'not deleted'); return; }
  Review.target = null;
  await Review.load(Review.job);
});

/* ---- drawing a region --------------------------------------------------------------------- */

/* Clicks on the slide add points (the viewer does not zoom on click meanwhile); Finish closes
 * the ring and stores it with the chosen class; Escape or Cancel drops it. */
Review.startDrawing = function () {
  Review.drawing = [];
  $('draw-start').hidden = true;
  $('draw-tools').hidden = false;
  const sel = $('draw-class');
  sel.replaceChildren();
  for (const l of hp.layers.filter((x) => x.kind === 'class')) {
    const o = document.createElement('option');
    o.value = l.name; o.textContent = l.name.replace('_', ' ');
    sel.appendChild(o);
  }
  text($('draw-hint'), 'Click on the slide to add points (at least 3), then Finish.');
};

function stopDrawing() {
  Review.drawing = null;
  $('draw-start').hidden = false;
  $('draw-tools').hidden = true;
  drawOverlay();
}

Review.addPoint = function (x, y) {
  if (!Review.drawing) return false;
  Review.drawing.push([Math.round(x * 10) / 10, Math.round(y * 10) / 10]);
  text($('draw-hint'), Review.drawing.length + ' point(s); Finish when done.');
  drawOverlay();
  return true;
};

async function finishDrawing() {
  const pts = Review.drawing || [];
  if (pts.length < 3) { text($('draw-hint'), 'A region needs at least 3 points.'); return; }
  const ring = pts.concat([pts[0]]);
  const r = await api('POST', '/v1/jobs/' + Review.job + '/annotations', {
    class: $('draw-class').value, comment: $('draw-comment').value.trim() || null,
    geometry: { type: 'Polygon', coordinates: [ring] },
  });
  if (r.status !== 201) { text($('draw-hint'), (r.json && r.json.detail) || 'not saved (' + r.status + ')'); return; }
  $('draw-comment').value = '';
  stopDrawing();
  await Review.load(Review.job);
  Review.select(r.json.id, 'Drawn region (' + r.json.class.replace('_', ' ') + ')');
}

$('draw-start').addEventListener('click', () => Review.startDrawing());
$('draw-finish').addEventListener('click', finishDrawing);
$('draw-cancel').addEventListener('click', stopDrawing);
document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && Review.drawing) stopDrawing(); });

/* Drawn regions dashed in their class colour; the region being drawn in black. */
Review.drawOn = function (ctx, item) {
  const toScreen = ([x, y]) => item.imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y));
  const path = (ring, close) => {
    ctx.beginPath();
    ring.forEach((pt, i) => { const p = toScreen(pt); if (i) ctx.lineTo(p.x, p.y); else ctx.moveTo(p.x, p.y); });
    if (close) ctx.closePath();
    ctx.stroke();
  };
  ctx.save();
  ctx.lineWidth = 2;
  ctx.setLineDash([8, 5]);
  for (const a of Review.data.annotations) {
    ctx.strokeStyle = 'rgb(' + colourOf(a.class, 0).join(',') + ')';
    path(a.geometry.coordinates[0], true);
  }
  if (Review.drawing && Review.drawing.length) {
    ctx.strokeStyle = '#000';
    ctx.setLineDash([]);
    path(Review.drawing, false);
  }
  ctx.restore();
};
