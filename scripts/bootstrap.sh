#!/usr/bin/env bash
# Create ./.venv (or $AUTOSPACE_VENV) and install autospace-nni with its test extras. Idempotent: a venv
# whose install stamp matches setup.cfg is reused.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${AUTOSPACE_VENV:-.venv}"
PY="${PYTHON:-python3}"
stamp="$VENV/.autospace-install-stamp"
want="$(cat setup.cfg pyproject.toml | sha1sum | cut -c1-40)"
# Fashion-MNIST comes from Debian; best effort (root + apt), the digits default needs nothing.
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "[bootstrap] installing Debian's dataset-fashion-mnist" >&2
  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 || \
    echo "[bootstrap] could not install dataset-fashion-mnist; Fashion-MNIST tests will skip" >&2
fi
# Debian's chromium: the web-UI test loads NNI's pages in it (skipped where it cannot be installed).
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "[bootstrap] installing Debian's chromium (headless web-UI checks)" >&2
  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 || \
    echo "[bootstrap] could not install chromium; the web-UI screenshot test will skip" >&2
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "[bootstrap] creating venv $VENV" >&2
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[bootstrap] installing autospace-nni and pinned dependencies into $VENV (a few minutes the first time)" >&2
  "$VENV/bin/pip" install -q 'setuptools<81' wheel
  "$VENV/bin/pip" install -q -e '.[test,export]'
  echo "$want" > "$stamp"
fi
