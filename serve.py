"""Start AEVB Explorer with its heavy libraries loaded before the server answers (``make run``/``serve``).

``streamlit run app.py`` imports nothing of the app until the first visitor arrives, so that visitor waits for
torch, pandas, scipy and the model code to import (seconds; BENCHMARKS.md, cold start) before the first
figure. Here
they are imported first, then Streamlit's own command line runs ``app.py`` in this process: every later
``import`` in the pages is a dictionary lookup. Arguments are passed to ``streamlit run app.py``.

    python serve.py --server.port 8501
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

PRELOAD = (
    "torch",
    "pandas",  # the pages' tables
    "plotly.graph_objects",
    "explorer_core.jobs",  # training, evaluation, scipy's Hungarian matching
    "explorer_core.explore.latent",
    "explorer_core.explore.clusters",
    "explorer_core.explore.sequences",
    "explorer_core.explore.fa",
    "explorer_core.figures.fa",
    "explorer_core.figures.latent",
    "streamlit.emojis",  # the page icon's check reads this 1 MB table on the first visit
    "streamlit.web.server",  # the server and runtime, imported by Streamlit's command line anyway
    "streamlit.runtime",
)
#: packages imported whole (every submodule): what the pages import, so that the heap settle() freezes holds
#: every module the pages will use and no page run has to import one
PRELOAD_PACKAGES = ("explorer_core", "views.components")


#: mallopt's parameter number of the arena cap (glibc malloc.h)
M_ARENA_MAX = -8
#: the preprocessings of the shipped models, whose test inputs the latent pages share
WARM_PREPROCESSINGS = ("dequantized", "binarized")


def preload(modules: tuple[str, ...] = PRELOAD, packages: tuple[str, ...] = PRELOAD_PACKAGES) -> float:
    """Import ``modules`` (what every page needs) and every submodule of ``packages`` (``__main__`` modules
    excepted); the seconds it took."""
    start = time.perf_counter()
    for name in modules:
        importlib.import_module(name)
    for name in packages:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            if not info.name.endswith(".__main__"):
                importlib.import_module(info.name)
    return time.perf_counter() - start


def warm_mnist() -> str:
    """Read the MNIST files into the process's cache (:func:`explorer_core.data.load_mnist_splits`), so the
    first visit of an MNIST page does not parse them; a line saying what happened (missing data is fine:
    the pages say how to fetch it)."""
    from explorer_core.data import MNISTUnavailable, load_mnist_splits, test_inputs

    start = time.perf_counter()
    try:
        load_mnist_splits(n_validation=0)
        for kind in WARM_PREPROCESSINGS:
            test_inputs(kind)
    except (MNISTUnavailable, ValueError, OSError) as err:
        return f"MNIST not read ({type(err).__name__})"
    return f"MNIST read and its test set preprocessed in {time.perf_counter() - start:.1f} s"


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap glibc's malloc arenas (``mallopt(M_ARENA_MAX)``) before any thread starts; whether it took effect.

    glibc gives threads that contend for malloc arenas of their own, up to 8 per core, and returns little of
    them to the system; Streamlit runs each session's script in a thread of its own, so with a class of
    sessions the server's resident memory creeps up (BENCHMARKS.md, soak). ``MALLOC_ARENA_MAX`` in the
    environment wins (glibc read it at start).
    Not glibc (macOS, musl): nothing happens.
    """
    import ctypes
    import ctypes.util
    import os

    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(M_ARENA_MAX, int(arenas)))
    except (OSError, AttributeError, TypeError):
        return False


def settle() -> None:
    """What the first visitor would otherwise wait for once per process: a full garbage collection of what
    the imports made, then ``gc.freeze()`` (later collections skip it; with Streamlit's collection after
    every run switched off, .streamlit/config.toml, that keeps Python's own full collections short), and
    Streamlit's one-time check whether it runs in a REPL (``inspect.stack()``, 0.26 s, on the first element
    a script sends).

    The heap is frozen here, before any session exists, and nowhere later: a freeze while sessions are
    alive would keep their objects (those in reference cycles) for the life of the process."""
    import gc

    import streamlit.delta_generator as delta_generator

    gc.collect()
    gc.freeze()
    # the check only prints a warning outside `streamlit run`; this process is `streamlit run`
    delta_generator._use_warning_has_been_displayed = True


def headless_command(port: int, python: str = sys.executable) -> list[str]:
    """The command line that serves the app headless on ``port`` for tests and benchmarks: this launcher,
    no file watcher, no usage statistics."""
    return [
        python,
        "serve.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]


def main(argv: list[str]) -> int:
    """Preload, then ``streamlit run app.py *argv``; Streamlit's exit status."""
    from streamlit.web import cli

    limit_malloc_arenas()
    seconds = preload()
    mnist = warm_mnist()
    settle()
    print(f"AEVB Explorer: libraries loaded in {seconds:.1f} s; {mnist}", file=sys.stderr, flush=True)
    sys.argv = ["streamlit", "run", "app.py", *argv]
    return cli.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
