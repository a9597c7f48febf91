#!/usr/bin/env bash
# Checks the whole tree against .swift-format (swift-format ships with the toolchain) and the
# 140-column limit, which swift-format does not enforce on string literals it cannot break.
# `bash scripts/lint.sh --fix` formats in place first.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
mapfile -t files < <(git ls-files '*.swift')
if [ "${1:-}" = "--fix" ]; then
    swift format format -i -p "${files[@]}"
fi
swift format lint --strict -p "${files[@]}"
python3 - "${files[@]}" <<'PY'
import sys
long = []
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if len(line.rstrip("\n")) > 140:
                long.append(f"{path}:{number}: {len(line.rstrip())} columns (limit 140)")
if long:
    print("\n".join(long))
    sys.exit(1)
PY
echo "lint: formatted, every line within 140 columns"
