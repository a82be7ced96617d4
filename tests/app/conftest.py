"""What the page tests share: the app's paths, opening a page with models from a temporary folder, the empty
``pretrained/`` fixture, finding an image by caption, and the latent pad helpers.

The latent pad is a components v2 element, which AppTest shows as an UnknownElement.

The pad's data is read from the element's proto (its JSON); an event from the browser is simulated the way the
frontend sends it: the pad's state (``have``) as the component's ``json_value`` and a trigger (``move``,
``pick``, ``zoom``) as the ``json_trigger_value`` of its trigger aggregator. This uses AppTest's private
``_tree`` and ``_run`` (there is no public API for components v2 in AppTest, Streamlit 1.67).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from streamlit.components.v2.bidi_component.main import _make_trigger_id
from streamlit.testing.v1 import AppTest

TIMEOUT = 120
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
VIEWS = ROOT / "views"


@pytest.fixture
def no_pretrained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pages look for models in an empty 'pretrained' folder (plus AEVB_MODEL_DIRS) and an empty runs
    folder (the session's runs folder may hold a run another test exported)."""
    import views._models as common

    empty = tmp_path / "pretrained"
    empty.mkdir()
    monkeypatch.setattr(common, "PRETRAINED_DIR", empty)
    monkeypatch.delenv("AEVB_MODEL_DIRS", raising=False)
    monkeypatch.setenv("AEVB_RUNS_DIR", str(tmp_path / "runs"))


def open_page(
    page: str, model_dir: Path | None, model: str | None, monkeypatch: pytest.MonkeyPatch
) -> AppTest:
    """Run the app, then switch to ``views/<page>.py``; models are looked for in ``model_dir`` too
    (``AEVB_MODEL_DIRS``), and ``model`` (a name in it) is the page's chosen model (``<page>_model``).
    Fails the test when the page raises."""
    if model_dir is not None:
        monkeypatch.setenv("AEVB_MODEL_DIRS", str(model_dir))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if model is not None:
        at.session_state[f"{page}_model"] = str(model_dir / f"{model}.json")
    at.run()
    at.switch_page(str(VIEWS / f"{page}.py")).run()
    assert not at.exception, at.exception
    return at


def image_by_caption(at: AppTest, prefix: str) -> str:
    """The URL (content-addressed) of the image whose caption starts with ``prefix``."""
    for image in at.image:
        for url, caption in zip(image.value, image.captions, strict=True):
            if caption.startswith(prefix):
                return url
    raise AssertionError(f"no image captioned {prefix!r}: {[c for i in at.image for c in i.captions]}")


def _walk(node):
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        children = children.values()
    for child in children or []:
        yield child
        yield from _walk(child)


def pad_element(at: AppTest, key: str):
    """The pad mounted with ``key`` (its UnknownElement); AssertionError when it is not on the page."""
    for node in _walk(at._tree):
        if getattr(node, "type", None) == "bidi_component" and node.proto.id.endswith(f"-{key}"):
            return node
    raise AssertionError(f"no latent pad with key {key!r} on the page")


def pad_data(at: AppTest, key: str) -> dict[str, Any]:
    """The data the server sent to the pad ``key`` in the last run."""
    return json.loads(pad_element(at, key).proto.json)


def pad_send(
    at: AppTest,
    key: str,
    event: str | None = None,
    value: Any = None,
    have: Any = None,
    have_decoder: Any = None,
) -> AppTest:
    """Rerun as if the browser's pad ``key`` reported its state ``have`` (the point-set version it holds)
    and ``have_decoder`` (the decoder version it holds) and, when ``event`` is given, sent that trigger with
    ``value``."""
    element = pad_element(at, key)
    states = at._tree.get_widget_states()
    state = states.widgets.add()
    state.id = element.proto.id
    state.json_value = json.dumps({"have": have, "have_decoder": have_decoder})
    if event is not None:
        trigger = states.widgets.add()
        trigger.id = _make_trigger_id(element.proto.id, "events")
        trigger.json_trigger_value = json.dumps([{"event": event, "value": value}])
    return at._run(states)
