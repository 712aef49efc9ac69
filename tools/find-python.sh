#!/usr/bin/env bash
# Print the path of a CPython 3.13 interpreter, or explain what is missing and fail.
# Why not just `python3.13`: under pyenv the shim exists but fails while the global version is
# another one, so each candidate is asked for its version instead of trusted by name.
set -u
candidates=("${PYTHON313:-}" python3.13)
if command -v pyenv >/dev/null 2>&1; then
  root="$(pyenv root)"
  for p in $(ls -d "$root"/versions/3.13.*/bin/python3.13 2>/dev/null | sort -V -r); do candidates+=("$p"); done
fi
candidates+=(/usr/local/bin/python3.13 /usr/bin/python3.13 python3)
for c in "${candidates[@]}"; do
  [ -n "$c" ] || continue
  if path="$(command -v "$c" 2>/dev/null)" && "$path" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
    echo "$path"
    exit 0
  fi
done
echo "Python 3.13 not found: install CPython 3.13 (e.g. 'pyenv install 3.13') or set PYTHON313=/path/to/python3.13" >&2
exit 1
