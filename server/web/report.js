/* The report panel beside the slide: the case's report (report.json of its newest signed
 * revision, else the draft) as a pathologist reads it: what the model may not be valid for
 * first, then the suggested category and confidence, the statements (each region a statement
 * rests on is a link that flies the view to it), the care-plan suggestions with their approval
 * state, and the amendments with their reasons. Loaded after viewer.js, which calls
 * ReportPanel.load when a slide opens. */
'use strict';

const ReportPanel = window.ReportPanel = { report: null, slideId: null };

const SECTIONS = [['diagnosis', 'Diagnosis'], ['findings', 'Findings'], ['qc', 'Quality control'],
  ['confidence', 'Confidence'], ['model', 'Model']];

function el(tag, cls, t) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (t !== undefined) e.textContent = t;
  return e;
}

ReportPanel.load = async function (job) {
  ReportPanel.report = null;
  ReportPanel.job = job;
  $('sign-form').hidden = true;
  text($('category-label'), 'Suggested category');
  text($('category-text'), 'no report yet');
  const body = $('report-body');
  body.replaceChildren();
  /* The job's worklist row says whether its case has a report, so none is asked for in vain. */
  const w = await api('GET', '/v1/worklist?job=' + encodeURIComponent(job));
  const row = w.json && w.json.rows && w.json.rows[0];
  const acc = row && row.case;
  ReportPanel.slideId = row && row.slide_id;
  slideWarning(row);
  if (!acc) {
    text($('report-status'), 'The job has no case: reports are built per case.');
    text($('category-text'), 'none (no case, no report)');
    return;
  }
  if (!row.report) {
    text($('report-status'), 'No report has been built for case ' + acc + ' yet.');
    text($('category-text'), 'no report yet');
    return;
  }
  const r = await api('GET', '/v1/cases/' + encodeURIComponent(acc) + '/report.json?revision=latest');
  if (r.status !== 200 || !r.json) {
    text($('report-status'), 'No report has been built for case ' + acc + ' yet.');
    text($('category-text'), 'no report yet');
    return;
  }
  ReportPanel.report = r.json;
  ReportPanel.acc = acc;
  ReportPanel.render(r.json, acc);
  /* A draft is signed here; a signed report is amended with `histoplan report sign --amend`. */
  $('sign-form').hidden = r.json.status !== 'preliminary';
};

/* Signing: the passphrase unlocks the pathologist's own key on the server for this request only
 * (docs/viewer.md says why); it is never kept in the page. */
$('sign-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const pass = $('sign-passphrase').value;
  $('sign-passphrase').value = '';
  const r = await api('POST', '/v1/cases/' + encodeURIComponent(ReportPanel.acc) + '/sign', { passphrase: pass });
  if (r.status !== 201) {
    text($('sign-error'), (r.json && r.json.detail) || 'not signed (' + r.status + ')');
    return;
  }
  text($('sign-error'), '');
  await ReportPanel.load(ReportPanel.job);
});

/* Over the slide itself, where the pathologist looks first: a model out of its domain, and the
 * analysis's QC flags. */
function slideWarning(row) {
  const w = $('slide-warning');
  const parts = [];
  if (row && row.out_of_domain === true) {
    parts.push('Model not valid for this slide (out of its domain): its heatmaps and regions say nothing about this tissue.');
  }
  if (row && row.super_resolution) {
    parts.push('Super-resolved: ' + row.super_resolution + '. The hatched layer marks these tiles.');
  }
  const flags = row ? row.qc_flags.filter((f) => f !== 'out-of-domain') : [];
  if (flags.length) parts.push('QC flags: ' + flags.join(', ') + '.');
  w.hidden = parts.length === 0;
  w.textContent = parts.join(' ');
}

function statusLine(rep, acc) {
  const so = rep.sign_off;
  if (rep.status === 'preliminary' || !so) return 'Case ' + acc + ': preliminary draft, not signed.';
  return 'Case ' + acc + ': ' + rep.status + ' (revision ' + rep.revision + '), signed by ' +
    so.pathologist_id + ' at ' + so.signed_at + '.';
}

/* A link to region `id` of this slide: flies there and opens it for review. */
function regionLink(id) {
  const a = el('a', 'region-link', id);
  a.tabIndex = 0;
  a.dataset.region = id;
  const go = () => {
    const r = hp.regions.find((x) => x.name === id);
    if (r) flyTo(r);
    Review.select(id, 'Region ' + id + (r ? ' (' + r.cls.replace('_', ' ') + ')' : ''));
  };
  a.addEventListener('click', go);
  a.addEventListener('keydown', (e) => { if (e.key === 'Enter') go(); });
  return a;
}

function statementEl(s) {
  const p = el('p', 'statement');
  p.dataset.statement = s.id;
  p.appendChild(el('b', null, s.id + ' '));
  p.appendChild(document.createTextNode(s.text));
  const here = (s.evidence || []).filter((e) => e.region_id && e.slide_id === ReportPanel.slideId);
  if (here.length) {
    p.appendChild(document.createTextNode(' Evidence: '));
    here.forEach((e, i) => { if (i) p.appendChild(document.createTextNode(', ')); p.appendChild(regionLink(e.region_id)); });
  }
  return p;
}

function suggestionEl(sg) {
  const d = el('div', 'suggestion');
  d.dataset.rule = sg.rule_id;
  d.appendChild(el('b', null, sg.rule_id + ': ' + sg.title));
  d.appendChild(el('p', null, sg.action));
  const state = sg.requires_clinician_approval
    ? 'Requires clinician approval; decision: ' + (sg.decision || 'pending')
    : 'Decision: ' + (sg.decision || 'pending');
  d.appendChild(el('p', 'approval', state + (sg.note ? ' (' + sg.note + ')' : '')));
  return d;
}

ReportPanel.render = function (rep, acc) {
  const body = $('report-body');
  text($('report-status'), statusLine(rep, acc));
  const reasons = (rep.case_findings && rep.case_findings.domain && rep.case_findings.domain.reasons) || [];
  for (const r of reasons) {
    body.appendChild(el('p', 'banner', 'Model not valid for slide ' + r.slide_id + ': ' + r.reason +
      '. No category and no care plan are suggested.'));
  }
  const dg = rep.diagnosis || {};
  const cat = dg.display || 'No category suggested';
  /* Signed, the category is the pathologist's: its display says "(confirmed by pathologist)". */
  text($('category-label'), rep.status === 'preliminary' ? 'Suggested category' : 'Category');
  text($('category-text'), cat);
  body.appendChild(el('p', 'category', cat));
  if (rep.confidence) {
    const c = rep.confidence;
    body.appendChild(el('p', null, 'Confidence: ' + c.level + ((c.reasons || []).length ? ' (' + c.reasons.join('; ') + ')' : '')));
  }
  for (const [key, title] of SECTIONS) {
    const st = (rep.statements || []).filter((s) => s.section === key);
    if (!st.length) continue;
    body.appendChild(el('h3', null, title));
    for (const s of st) body.appendChild(statementEl(s));
  }
  const sugg = (rep.care_plan && rep.care_plan.suggestions) || [];
  body.appendChild(el('h3', null, 'Draft care plan (' + sugg.length + ' suggestion' + (sugg.length === 1 ? '' : 's') + ')'));
  for (const sg of sugg) body.appendChild(suggestionEl(sg));
  const so = rep.sign_off;
  if (so && (so.amendments || []).length) {
    body.appendChild(el('h3', null, 'Amendments'));
    if (so.reason) body.appendChild(el('p', null, 'Reason: ' + so.reason));
    const ul = el('ul');
    for (const a of so.amendments) {
      const what = a.field || a.suggestion || a.category || '';
      ul.appendChild(el('li', null, what + ': ' + JSON.stringify(a.before) + ' → ' + JSON.stringify(a.after) +
        (a.reason ? ' — ' + a.reason : '')));
    }
    body.appendChild(ul);
  }
  if (typeof Review !== 'undefined') Review.renderMarks();
};
