"""Background training jobs: one process per run, a manager per server, everything on disk under ``runs/``.

A job runs :func:`explorer_core.training.trainer.train` (the CLI's trainer) in its own process
(multiprocessing's
``spawn`` context), so a crash or an out-of-memory kill never takes the server down. Each run lives in
``<root>/<id>/``:

* ``config.json``: the :class:`~explorer_core.training.recipes.TrainConfig` (``"config"``) and the job's
options.
* ``status.json``: ``state`` (one of :data:`STATES`), timestamps (Unix seconds), ``pid``, the device, and for
  a failed run the error text and its traceback. Written atomically (temporary name + rename).
* ``metrics.jsonl``: one JSON object per logged step (``kind="step"``: train ELBO, a running mean over the
  epoch) and per epoch (``kind="epoch"``: train and validation ELBO plus the family's own metrics, such as
  the GMVAE's ``cluster_accuracy``). Nats per image.
* ``preview.safetensors``: 16 images from the model after the latest epoch (``images`` [16, 784] in [0, 1]).
* ``<id>.safetensors`` + ``<id>.json``: the final model, in the format of ``pretrained/`` (written by
  :func:`explorer_core.artifacts.save_model`, atomically, the JSON last).
* ``cancel``: present once a cancel was asked for. A cancelled run ends its current epoch's steps, keeps its
  best epoch, evaluates it and publishes it like a done one (state ``cancelled``, with ``model`` set).
* ``checkpoint.json`` + ``checkpoint-<epoch>.safetensors``: the trainer's per-epoch checkpoint
  (:mod:`explorer_core.training.checkpoint`); an interrupted or cancelled run continues from it
  (:meth:`JobManager.resume`).

Every file of a run is untrusted input when read back (a run folder may have been edited or damaged):
``status.json``, ``config.json`` and each line of ``metrics.jsonl`` are parsed into validated schemas
(:data:`STATUS_SCHEMA`, :data:`CONFIG_FILE_SCHEMA`, :data:`METRICS_ROW`); a run whose files do not fit is
listed as a :class:`RunProblem` with one message, and the others go on working.

The root is ``AEVB_RUNS_DIR`` (default ``<repo>/runs``). :class:`JobManager` starts, queues (bounded
concurrency per device), cancels (cooperatively through the ``cancel`` file, then SIGTERM, then SIGKILL),
deletes and lists runs by reading the root; after a restart it finds every run again and marks one whose
process is gone as ``interrupted``. Nothing here imports Streamlit.

Modules: :mod:`.store` (the run folder's files and the list of runs), :mod:`.memory` (estimates and config
validation before anything is spent), :mod:`.worker` (the process of one run), :mod:`.manager` (the
:class:`JobManager` of a server). What other modules use is imported here.
"""

from explorer_core.jobs.manager import JobManager, eta_text
from explorer_core.jobs.memory import MemoryEstimate, estimate_memory, validate_config
from explorer_core.jobs.store import (
    CONFIG_FILE_SCHEMA,
    STATUS_SCHEMA,
    ConfigRejectedError,
    JobError,
    RunInfo,
    RunProblem,
    done_models,
    list_runs,
    read_metrics,
    read_preview,
    read_run,
    runs_root,
    scan_runs,
)
from explorer_core.jobs.worker import check_elbo
from explorer_core.training.trainer import TrainingError

__all__ = [
    "CONFIG_FILE_SCHEMA",
    "STATUS_SCHEMA",
    "ConfigRejectedError",
    "JobError",
    "JobManager",
    "MemoryEstimate",
    "RunInfo",
    "RunProblem",
    "TrainingError",
    "check_elbo",
    "done_models",
    "estimate_memory",
    "eta_text",
    "list_runs",
    "read_metrics",
    "read_preview",
    "read_run",
    "runs_root",
    "scan_runs",
    "validate_config",
]
