"""serve.py, the launcher of `make run`: what it prepares before the server answers."""

from __future__ import annotations

import gc
import tomllib
from pathlib import Path

import serve


def test_headless_command_runs_this_launcher_on_the_port():
    command = serve.headless_command(8765, python="python")
    assert command[:2] == ["python", "serve.py"]
    assert command[command.index("--server.port") + 1] == "8765"
    assert command[command.index("--server.headless") + 1] == "true"


def test_malloc_arenas_are_left_to_the_environment_when_it_says(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert serve.limit_malloc_arenas() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    assert isinstance(serve.limit_malloc_arenas(), bool)  # True on glibc, False elsewhere


def test_settle_freezes_the_heap_and_skips_streamlits_repl_check():
    import streamlit.delta_generator as delta_generator

    monkeypatch_flag = delta_generator._use_warning_has_been_displayed
    try:
        delta_generator._use_warning_has_been_displayed = False
        serve.settle()
        assert delta_generator._use_warning_has_been_displayed is True
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        delta_generator._use_warning_has_been_displayed = monkeypatch_flag


def test_the_pages_test_inputs_are_warmed_for_the_shipped_preprocessings():
    from explorer_core.data import PREPROCESSINGS

    assert set(serve.WARM_PREPROCESSINGS) <= set(PREPROCESSINGS)


def test_the_browser_keeps_large_messages_across_fragment_runs():
    """Streamlit counts every fragment run in a message's age; with its default (2) a pad move or a Training
    poll dropped a page's elements from the browser's cache (coming back re-sent them) and opened the
    "Cached ForwardMsg MISS" race the soak hit. ``.streamlit/config.toml`` raises it."""
    config = tomllib.loads((Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml").read_text())
    assert config["global"]["maxCachedMessageAge"] >= 50


def test_preload_imports_every_module_the_pages_use():
    """The frozen heap holds every module of the model code and the page components, so no page run imports
    one later (a page run freezes nothing: see the next test)."""
    import pkgutil
    import sys

    import explorer_core

    serve.preload(modules=(), packages=("explorer_core",))
    names = [i.name for i in pkgutil.walk_packages(explorer_core.__path__, "explorer_core.")]
    assert "explorer_core.explore.watch" in names
    assert [n for n in names if n not in sys.modules and not n.endswith("__main__")] == []


def test_a_page_run_freezes_nothing():
    """A freeze after a run pinned the objects of every session alive at that moment (those in reference
    cycles) for the life of the process: a class's sessions, when a first ▶ Play imported a module lazily
    (issue 23, memory after the visitors leave). Only serve.py freezes, before the server starts."""
    from streamlit.testing.v1 import AppTest

    gc.unfreeze()
    at = AppTest.from_file(str(Path(serve.__file__).with_name("app.py")), default_timeout=60)
    at.run()
    assert not at.exception
    assert gc.get_freeze_count() == 0
