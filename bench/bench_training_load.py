"""VAE page while training in the background: server time of one latent change (as bench_latent.py times it:
decode + map figure + serialisation) on a pretrained VAE, idle and while a CPU training job started through
the jobs manager (a VAE, the quick recipe) runs; p50/p95 of both and their ratio (the target: under 2x).
"""

import argparse
import tempfile
import time
from pathlib import Path

import bench_latent
from common import write_result

from explorer_core.artifacts import PRETRAINED_DIR
from explorer_core.device import limit_cpu_threads
from explorer_core.jobs import JobManager
from explorer_core.training.trainer import config_from_args

MODEL = "vae-cb-l2"
TARGET_RATIO = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=200, help="latent changes timed per phase")
    parser.add_argument("--model", default=MODEL, help="a pretrained VAE by name")
    args = parser.parse_args()
    limit_cpu_threads(1)  # as the pages do
    bench_latent.REPEAT = args.repeat
    json_path = str(PRETRAINED_DIR / f"{args.model}.json")

    print("idle ...", flush=True)
    idle = bench_latent.bench_model(json_path)["total"]

    with tempfile.TemporaryDirectory() as root:
        manager = JobManager(Path(root), device="cpu")
        config = config_from_args("quick", "vae", {"epochs": 50})
        run_id = manager.start(config, label="VAE", preset="quick")
        deadline = time.monotonic() + 600
        while not manager.get(run_id).metrics():  # wait until it trains, not while torch loads
            if not manager.get(run_id).active or time.monotonic() > deadline:
                raise SystemExit(f"the training job did not start: {manager.get(run_id).status}")
            time.sleep(0.5)
        first = manager.get(run_id).metrics()[-1]
        print("while training ...", flush=True)
        loaded = bench_latent.bench_model(json_path)["total"]
        last = manager.get(run_id).metrics()[-1]
        job_state = manager.get(run_id).state
        manager.cancel(run_id)
        manager.wait(run_id, 120)
        manager.close()
        status = manager.get(run_id).status

    seconds = max(last["seconds"] - first["seconds"], 1e-9)
    result = {
        "what": __doc__.strip(),
        "model": args.model,
        "repeat": args.repeat,
        "idle": idle,
        "while_training": loaded,
        "ratio_p50": round(loaded["p50_ms"] / idle["p50_ms"], 2),
        "ratio_p95": round(loaded["p95_ms"] / idle["p95_ms"], 2),
        "target_ratio": TARGET_RATIO,
        "job": {
            "config": "vae quick recipe (L = 2, hidden 500-500), 50 epochs, batch 100",
            "state_during_measurement": job_state,
            "threads": status.get("threads"),
            "steps_per_s_during_measurement": round((last["step"] - first["step"]) / seconds, 1),
        },
    }
    result["met"] = result["ratio_p50"] < TARGET_RATIO and result["ratio_p95"] < TARGET_RATIO
    write_result("training_load", result)
    print(
        f"idle p50/p95 {idle['p50_ms']}/{idle['p95_ms']} ms; while training {loaded['p50_ms']}/"
        f"{loaded['p95_ms']} ms; ratio {result['ratio_p50']}x / {result['ratio_p95']}x"
    )


if __name__ == "__main__":
    main()
