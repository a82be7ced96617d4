#!/usr/bin/env bash
# GMVAE recipe v3 (issue 36), resumable: screen seeds 0-7 of gmvae-marginal-v3 to epoch 20, two at a time
# (one torch thread each), then continue the restart the screening rule keeps to the preset's 200 epochs.
#   usage: tools/gmvae_v3.sh screen [SEEDS...]   |   tools/gmvae_v3.sh long SEED [SEED...]
# Runs live in $AEVB_V3_DIR (default ~/aevb-runs/gmvae-v3), outside the work tree, so a later session on the
# same machine resumes them; each finished screening restart's JSON is copied to pretrained/seeds/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PRESET=${PRESET:-gmvae-marginal-v3}
DIR=${AEVB_V3_DIR:-$HOME/aevb-runs/gmvae-v3}/$PRESET
STAGE=${1:-screen}
shift || true
mkdir -p "$DIR"

# one run: resume its checkpoint if there is one, else start it; EPOCHS is where this sitting stops
one_run() {
  local seed=$1 epochs=$2 name=$3 run="$DIR/run-s$1"
  if [[ -f "$run/checkpoint.json" ]]; then
    "$PY" -m explorer_core train --resume "$run" --epochs "$epochs" --name "$name" --out "$DIR" \
      --threads 1 >>"$DIR/s$seed.log" 2>&1
  else
    "$PY" -m explorer_core train gmvae --preset "$PRESET" --seed "$seed" --epochs "$epochs" --name "$name" \
      --out "$DIR" --run-dir "$run" --threads 1 >>"$DIR/s$seed.log" 2>&1
  fi
}

screen_seed() {
  local seed=$1 name="$PRESET-screen-s$1"
  if [[ -f "$DIR/$name.json" ]]; then echo "seed $seed: screened"; return; fi
  echo "seed $seed: screening ($(date -u +%H:%M))"
  one_run "$seed" 20 "$name"
  cp "$DIR/$name.json" pretrained/seeds/ && echo "seed $seed: screened ($(date -u +%H:%M))"
}

if [[ $STAGE == screen ]]; then
  if (($#)); then SEEDS=("$@"); else SEEDS=(0 1 2 3 4 5 6 7); fi
  for ((i = 0; i < ${#SEEDS[@]}; i += 2)); do
    screen_seed "${SEEDS[i]}" &
    if ((i + 1 < ${#SEEDS[@]})); then screen_seed "${SEEDS[i + 1]}" & fi
    wait
  done
elif [[ $STAGE == long ]]; then
  for seed in "$@"; do
    (one_run "$seed" 200 "$PRESET-s$seed" && cp "$DIR/$PRESET-s$seed.json" pretrained/seeds/) &
  done
  wait
else
  echo "usage: $0 screen [SEEDS...] | long SEED [SEED...]" >&2
  exit 2
fi
