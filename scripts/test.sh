#!/usr/bin/env bash
# The README's test command: installs the project, starts the real Neo4j server
# (scripts/neo4j.sh), runs the whole pytest suite against both stores, stops Neo4j again if
# this script started it. Extra arguments go to pytest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

python3 -m pip install -q --disable-pip-version-check -e ".[dev]"

# NOTE: the browser test (tests/serving/test_ui.py) drives Debian's chromium through the
# Playwright driver installed above; it fails, never skips, without it. The CJK font is for the
# Chinese in the page's screenshots.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null
  fi
fi

started=0
if ! bash scripts/neo4j.sh status >/dev/null 2>&1; then
  bash scripts/neo4j.sh start
  started=1
fi
stop_neo4j() { if [ "$started" = 1 ]; then bash scripts/neo4j.sh stop || true; fi; }
trap stop_neo4j EXIT

set +e
python3 -m pytest "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then
  # NOTE: pytest's 5 means nothing was collected; for CI that is a failure, not a pass.
  echo "test.sh: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
