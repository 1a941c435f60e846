#!/usr/bin/env bash
# Compares two run folders of the same experiment: evaluations and KL (as sets of lines: runs with
# seeds side by side write them in another order), every arm's weights and optimizer state, and
# config.json (its provenance aside). Prints each difference; exits non-zero if there is one. Example:
#   scripts/compare-runs.sh runs/a runs/b
set -uo pipefail
a="$1"
b="$2"
status=0
for f in evals.jsonl kl.jsonl; do
  if ! cmp -s <(sort "$a/$f") <(sort "$b/$f"); then
    echo "differ: $f"
    status=1
  fi
done
# config.json without its provenance (the commit and the machine a run was made on)
settings() { node -e 'const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); delete c.provenance; console.log(JSON.stringify(c))' "$1"; }
[ "$(settings "$a/config.json")" = "$(settings "$b/config.json")" ] || { echo "differ: config.json"; status=1; }
count=0
for file in "$a"/seed-*/*/checkpoint/weights.bin "$a"/seed-*/*/checkpoint/optimizer.bin; do
  [ -e "$file" ] || continue
  rel="${file#"$a"/}"
  count=$((count + 1))
  cmp -s "$file" "$b/$rel" || { echo "differ: $rel"; status=1; }
done
echo "compared evals.jsonl, kl.jsonl, config.json and $count checkpoint files: $([ $status = 0 ] && echo identical || echo DIFFERENT)"
exit $status
