#!/usr/bin/env bash
# The packaging checks CI runs (and `nox -s dist`): what a vendor gets from a release must work.
#
#   1. build the sdist and the wheel of the core and of every package under plugins/ (python -m build);
#   2. twine check --strict every file (metadata, README rendering);
#   3. the core wheel and sdist hold every data file of src/delivery_sdk (divisions, zones, calendars,
#      print-centre TOML, locale catalogues, portal templates, py.typed: every tracked non-Python file);
#   4. install the built core wheel into a clean virtual environment, away from the source tree, read every
#      data file through importlib.resources, and run the demo and the dashboard from it.
#
# Usage: scripts/check-dist.sh [OUTDIR]   (default: a temporary folder, removed at the end)
# PYTHON (default .venv/bin/python) must have build and twine (requirements-dev.txt installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
PYTHON="${PYTHON:-$root/.venv/bin/python}"
out="${1:-}"
if [ -z "$out" ]; then
  out="$(mktemp -d -t delivery-sdk-dist.XXXXXX)"
  trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out/dist"
start=$SECONDS

packages=(.)
for plugin in plugins/*/; do
  [ -f "${plugin}pyproject.toml" ] && packages+=("${plugin%/}")
done
echo "check-dist: building ${#packages[@]} packages into $out/dist"
for package in "${packages[@]}"; do
  # --no-isolation: the build backend (hatchling) comes from this environment, not one download per package
  "$PYTHON" -m build --no-isolation --sdist --wheel --outdir "$out/dist" "$package" >"$out/build.log" 2>&1 || {
    cat "$out/build.log" >&2
    echo "check-dist: building $package failed" >&2
    exit 1
  }
done
wheels=("$out"/dist/*.whl)
sdists=("$out"/dist/*.tar.gz)
if [ "${#wheels[@]}" -ne "${#packages[@]}" ] || [ "${#sdists[@]}" -ne "${#packages[@]}" ]; then
  echo "check-dist: expected ${#packages[@]} wheels and sdists, got ${#wheels[@]} and ${#sdists[@]}" >&2
  exit 1
fi

"$PYTHON" -m twine check --strict "$out"/dist/*

# Every tracked non-Python file of the core package, as a path inside the package.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files --cached --others --exclude-standard src/delivery_sdk
else
  find src/delivery_sdk -type f
fi | grep -v -e '\.py$' -e '__pycache__' | sed 's#^src/##' >"$out/data-files.txt"
echo "check-dist: $(wc -l <"$out/data-files.txt") data files expected in the core wheel and sdist"
core_wheel="$(ls "$out"/dist/delivery_sdk-*.whl)"
core_sdist="$(ls "$out"/dist/delivery_sdk-*.tar.gz)"
"$PYTHON" - "$core_wheel" "$core_sdist" "$out/data-files.txt" <<'EOF'
import sys, tarfile, zipfile
wheel, sdist, listing = sys.argv[1:]
expected = [line for line in open(listing, encoding="utf-8").read().splitlines() if line]
in_wheel = set(zipfile.ZipFile(wheel).namelist())
in_sdist = {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name}
missing = [f"wheel: {p}" for p in expected if p not in in_wheel]
missing += [f"sdist: src/{p}" for p in expected if f"src/{p}" not in in_sdist]
missing += [f"sdist: {p}" for p in ("LICENSE", "README.md", "CHANGELOG.md") if p not in in_sdist]
if not any(name.endswith(".dist-info/licenses/LICENSE") for name in in_wheel):
    missing.append("wheel: the LICENSE file")
if missing:
    sys.exit("check-dist: missing from the built core package:\n  " + "\n  ".join(missing))
EOF

# The built core wheel alone, in a clean venv, run from a folder outside the source tree.
venv="$out/venv"
"${BASE_PYTHON:-python3}" -m venv "$venv"
"$venv/bin/pip" install -q "$core_wheel" 2>&1 | grep -v "^WARNING: Location" >&2 || true
mkdir -p "$out/run"
(
  cd "$out/run"
  PYTHONPATH='' "$venv/bin/python" - "$out/data-files.txt" <<'EOF'
import importlib.resources, sys
from importlib.metadata import version

import delivery_sdk

assert "site-packages" in delivery_sdk.__file__, f"not the installed wheel: {delivery_sdk.__file__}"
assert delivery_sdk.__version__ == version("delivery-sdk"), (delivery_sdk.__version__, version("delivery-sdk"))
for path in open(sys.argv[1], encoding="utf-8").read().splitlines():
    package, _, rest = path.partition("/")
    resource = importlib.resources.files(package).joinpath(rest)
    assert resource.is_file() and resource.read_bytes() is not None, f"not installed: {path}"
print(f"check-dist: delivery-sdk {delivery_sdk.__version__} installed from the wheel, with its data files")
EOF
  "$venv/bin/delivery-sdk" demo --tasks 300 --store "$out/run/demo.sqlite3" --no-progress >"$out/demo.log"
  tail -n 3 "$out/demo.log"
  "$venv/bin/delivery-sdk" verify "$out/run/demo.sqlite3" >/dev/null
)
echo "check-dist: ok (${#packages[@]} packages built and checked, demo from the wheel) in $((SECONDS - start)) s"
