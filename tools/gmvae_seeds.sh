#!/usr/bin/env bash
# Train the seeds of a GMVAE recipe two at a time (one torch thread each), resuming any that were
# interrupted, then publish the one with the best validation ELBO (the declared rule) into pretrained/.
#   usage: tools/gmvae_seeds.sh [PRESET] [SEEDS...]     (default: gmvae-marginal 0 1 2 3)
# Each run checkpoints every epoch into runs/gmvae-seeds/PRESET/run-sSEED; rerunning the script after an
# interruption (Ctrl-C, a reboot, a session's end) continues every unfinished seed where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PRESET=${1:-gmvae-marginal}
shift || true
if (($#)); then SEEDS=("$@"); else SEEDS=(0 1 2 3); fi
DIR=${AEVB_RUNS_DIR:-runs}/gmvae-seeds/$PRESET
mkdir -p "$DIR"

one_seed() {
  local seed=$1 name="$PRESET-s$1" run="$DIR/run-s$1"
  if [[ -f "$run/checkpoint.json" ]]; then
    # a finished run only re-evaluates its best epoch (a minute); an unfinished one goes on
    echo "seed $seed: resuming $run"
    "$PY" -m explorer_core train --resume "$run" --threads 1 >>"$DIR/s$seed.log" 2>&1
  elif [[ -f "$DIR/$name.json" ]]; then
    echo "seed $seed: done ($DIR/$name.json)"
  else
    echo "seed $seed: starting"
    "$PY" -m explorer_core train gmvae --preset "$PRESET" --seed "$seed" --name "$name" --out "$DIR" \
      --run-dir "$run" --threads 1 >>"$DIR/s$seed.log" 2>&1
  fi
}

for ((i = 0; i < ${#SEEDS[@]}; i += 2)); do
  one_seed "${SEEDS[i]}" &
  if ((i + 1 < ${#SEEDS[@]})); then one_seed "${SEEDS[i + 1]}" & fi
  wait
done
candidates=()
for seed in "${SEEDS[@]}"; do candidates+=("$DIR/$PRESET-s$seed.json"); done
"$PY" -m explorer_core select "${candidates[@]}" --out pretrained --name "$PRESET"
