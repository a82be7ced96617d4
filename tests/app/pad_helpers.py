"""AppTest helpers for the latent pad (a components v2 element, which AppTest shows as an UnknownElement).

The pad's data is read from the element's proto (its JSON); an event from the browser is simulated the way the
frontend sends it: the pad's state (``have``) as the component's ``json_value`` and a trigger (``move``,
``pick``, ``zoom``) as the ``json_trigger_value`` of its trigger aggregator. This uses AppTest's private
``_tree`` and ``_run`` (there is no public API for components v2 in AppTest, Streamlit 1.67).
"""

from __future__ import annotations

import json
from typing import Any

from streamlit.components.v2.bidi_component.main import _make_trigger_id
from streamlit.testing.v1 import AppTest


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
