# Sourced by suites that need Python packages. Creates one virtual environment
# for the whole run, $PSYNE_ROOT/target/pyvenv, fills it from
# tests/requirements.txt (re-installing only when that file changes), and
# exports PSYNE_PYTHON, the venv's interpreter. Every suite reuses the same venv.
#   . "$PSYNE_ROOT/tests/suites/lib/pyvenv.sh"
#   "$PSYNE_PYTHON" -m pytest ...
psyne_venv="$PSYNE_ROOT/target/pyvenv"
psyne_reqs="$PSYNE_ROOT/tests/requirements.txt"
if [ ! -x "$psyne_venv/bin/python" ]; then
  python3 -m venv "$psyne_venv"
  "$psyne_venv/bin/python" -m pip install -q --upgrade pip
fi
psyne_stamp="$psyne_venv/.requirements.sha256"
psyne_sum="$(sha256sum "$psyne_reqs" | cut -d' ' -f1)"
if [ ! -f "$psyne_stamp" ] || [ "$(cat "$psyne_stamp")" != "$psyne_sum" ]; then
  "$psyne_venv/bin/python" -m pip install -q -r "$psyne_reqs"
  echo "$psyne_sum" >"$psyne_stamp"
fi
export PSYNE_PYTHON="$psyne_venv/bin/python"
unset psyne_venv psyne_reqs psyne_stamp psyne_sum
