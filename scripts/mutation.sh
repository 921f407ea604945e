#!/usr/bin/env bash
# Mutation testing of the enforcement core with mutmut, one module at a time.
#
#   scripts/mutation.sh            every module below, one after the other
#   scripts/mutation.sh verify     just one (policy, policy_grants, chain, verify, encoding,
#                                  vault, link_state, send_keys, link_checks)
#
# Each module is mutated in a throwaway copy of the working tree (tracked and untracked,
# non-ignored files), never in place, and its mutants are run against only the fast unit tests
# that concern it (no PostgreSQL, no end-to-end server). Prints one JSON line per module:
#   {"module": ..., "generated": N, "killed": N, "survived": N, "timeout": N, "no_tests": N,
#    "equivalent": N, "score": 0.xx, "raw_score": 0.xx, "survivors": [...]}
# score = killed / (generated - equivalent), raw_score = killed / generated; `equivalent` counts
# the surviving mutants argued equivalent in scripts/mutation-equivalent.txt, and `survivors`
# lists the others (each one is a missing test, or an argument missing from that file).
# MUTATION_JOBS (default 1) sets mutmut's --max-children; the machine is shared, keep it low.
# MUTATION_KEEP=1 leaves the copy in place (its path goes to stderr) to inspect mutants.
set -euo pipefail

MUTMUT_VERSION="3.8.1"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
EQUIVALENT="$ROOT/scripts/mutation-equivalent.txt"
JOBS="${MUTATION_JOBS:-1}"

# module name | file to mutate | the fast unit tests that concern it [| mutant names (fnmatch)
# when only part of the file is the module: the link-state checks are one method of oauth.py].
# "@grants": mutmut mutates no module-level value, so the grant table of rules.py gets its own
# mutants (each condition, operation and purpose of each grant dropped): mutation_grants.py.
MODULES=(
  "policy|connector/policy/rules.py|tests/policy/test_rules_pinned.py tests/policy/test_rules_combined.py tests/policy/test_rules_table.py"
  "chain|audit/chain.py|tests/audit/test_chain_pinned.py tests/audit/test_verify_pinned.py"
  "verify|audit/verify.py|tests/audit/test_verify_pinned.py tests/audit/test_verify_witness_pinned.py"
  "encoding|audit/encoding.py|tests/audit/test_encoding_pinned.py tests/audit/test_encoding.py tests/audit/test_chain_pinned.py"
  "vault|connector/accounts/vault.py|tests/linking/test_vault_pinned.py"
  "link_state|connector/accounts/link_state.py|tests/linking/test_link_state_pinned.py"
  "send_keys|connector/inbox/send_keys.py|tests/test_send_keys_pinned.py tests/test_send_keys.py"
  "policy_grants|@grants|tests/policy/test_rules_pinned.py tests/policy/test_rules_combined.py tests/policy/test_rules_table.py"
  "link_checks|connector/accounts/oauth.py|tests/linking/test_link_checks_pinned.py|connector.accounts.oauth.xǁLinkServiceǁ_state_problem__mutmut_*"
)

if ! "$PY" -c "import mutmut, sys; sys.exit(mutmut.__version__ != '$MUTMUT_VERSION')" 2>/dev/null
then
  echo "installing mutmut==$MUTMUT_VERSION into .venv" >&2
  "$ROOT/.venv/bin/pip" install --quiet "mutmut==$MUTMUT_VERSION" >&2
fi

WORK=""
cleanup() {
  if [[ -n "$WORK" && -d "$WORK" ]]; then
    if [[ "${MUTATION_KEEP:-0}" == "1" ]]; then
      echo "kept $WORK" >&2
    else
      rm -rf -- "$WORK"
    fi
  fi
}
trap cleanup EXIT

run_module() {
  local name="$1" target="$2" tests="$3" pattern="${4:-}"
  cleanup
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/mutation-$name.XXXXXX")"
  # A copy of the working tree as it is now: tracked and untracked files git does not ignore.
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard) \
    | "$PY" -c '
import os, shutil, sys
root, work = sys.argv[1:3]
for rel in sys.stdin.buffer.read().decode().split("\0"):
    src = os.path.join(root, rel)
    if rel and os.path.isfile(src) and not rel.startswith("mutants/"):
        os.makedirs(os.path.dirname(os.path.join(work, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(work, rel))
' "$ROOT" "$WORK"
  if [[ "$target" == "@grants" ]]; then  # the grant table: hand-made mutants, no mutmut
    (cd "$WORK" && PYTHONPATH="$WORK" "$PY" scripts/mutation_grants.py $tests)
    return
  fi
  {
    echo "[mutmut]"
    echo "source_paths ="
    echo "    connector"
    echo "    audit"
    echo "only_mutate = $target"
    echo "pytest_add_cli_args_test_selection ="
    for t in $tests; do echo "    $t"; done
    echo "pytest_add_cli_args ="
    echo "    -p"
    echo "    no:cacheprovider"
    echo "    -q"
    echo "use_git_change_detection = false"
  } >"$WORK/setup.cfg"
  # mutmut reads [tool.mutmut] from pyproject.toml first; the copy must have none.
  "$PY" - "$WORK/pyproject.toml" <<'EOF'
import re, sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
open(path, "w", encoding="utf-8").write(re.sub(r"(?ms)^\[tool\.mutmut\].*?(?=^\[|\Z)", "", text))
EOF
  local log="$WORK/mutmut.log"
  local only=()
  if [[ -n "$pattern" ]]; then only=("$pattern"); fi
  if ! (cd "$WORK" && "$ROOT/.venv/bin/mutmut" run --max-children "$JOBS" "${only[@]}" \
        >"$log" 2>&1); then
    echo "mutmut failed for $name; last lines of its log:" >&2
    tail -n 40 "$log" >&2
    return 1
  fi
  (cd "$WORK" && "$ROOT/.venv/bin/mutmut" results --all true >"$WORK/results.txt" 2>>"$log")
  "$PY" "$ROOT/scripts/mutation_summary.py" "$name" "$WORK" "$ROOT/.venv/bin/mutmut" \
    "$EQUIVALENT" "${pattern:-*}"
}

ran=0
for spec in "${MODULES[@]}"; do
  IFS='|' read -r name target tests pattern <<<"$spec"
  if [[ $# -gt 0 && "$1" != "$name" ]]; then
    continue
  fi
  ran=1
  run_module "$name" "$target" "$tests" "$pattern"
done
if [[ $ran -eq 0 ]]; then
  echo "unknown module ${1:-}; known: policy policy_grants chain verify encoding vault link_state send_keys link_checks" >&2
  exit 2
fi
