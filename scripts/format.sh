#!/usr/bin/env bash
# scripts/format.sh — clang-format every C++ file of the project (.clang-format at the root).
#
# Usage: scripts/format.sh           reformat in place
#        scripts/format.sh --check   list files that are not formatted; exit 1 if any
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}

mapfile -t files < <(git ls-files --cached --others --exclude-standard -- \
  'include/*.hpp' 'tests/*.hpp' 'tests/*.cpp' 'bench/*.hpp' 'bench/*.cpp' \
  'examples/*.cpp' 'examples/*.hpp' | sort -u)
((${#files[@]})) || exit 0

if [[ ${1:-} == --check ]]; then
  bad=0
  for f in "${files[@]}"; do
    [[ -f $f ]] || continue
    if ! "$CLANG_FORMAT" --dry-run --Werror "$f" >/dev/null 2>&1; then
      echo "not formatted: $f"
      bad=1
    fi
  done
  exit $bad
fi
"$CLANG_FORMAT" -i "${files[@]}"
