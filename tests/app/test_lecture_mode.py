"""Lecture mode: a switch kept in the URL; the prose and the metrics fold away; a projector scale."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.app.conftest import APP, TIMEOUT, VIEWS


def open_vae(**params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    at.switch_page(str(VIEWS / "vae.py")).run()
    assert not at.exception, at.exception
    return at


def test_normal_mode_shows_the_prose_and_the_metrics_open():
    at = open_vae()
    assert not at.toggle(key="lecture").value
    assert any("variational autoencoder" in m.value for m in at.main.markdown)
    assert "About this page" not in [e.label for e in at.expander]
    assert "lecture" not in at.query_params


def test_a_prepared_link_opens_in_lecture_mode_with_its_scale():
    at = open_vae(lecture="1", scale="125")
    assert at.toggle(key="lecture").value
    labels = [e.label for e in at.expander]
    assert "About this page" in labels and "The model's test-set figures" in labels
    intro = next(e for e in at.expander if e.label == "About this page")
    assert any("variational autoencoder" in m.value for m in intro.markdown)
    assert at.session_state["lecture_scale"] == 125
    assert any("zoom: 1.25" in h.proto.body for h in at.get("html"))
    # switching it off drops it from the URL and unfolds the prose
    at.toggle(key="lecture").set_value(False).run()
    assert "lecture" not in at.query_params and "scale" not in at.query_params
    assert "About this page" not in [e.label for e in at.expander]


def test_a_scale_out_of_range_in_the_link_is_ignored():
    at = open_vae(lecture="1", scale="900")
    assert at.session_state["lecture_scale"] == 100
    assert not any("zoom: 9" in h.proto.body for h in at.get("html"))


def test_the_fa_watch_and_vrnn_pages_offer_their_curves_and_animation_for_slides():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    for page, key in (("factor_analysis", "fa_csv"), ("watch", "watch_csv"), ("vrnn", "vrnn_gif")):
        at.switch_page(str(VIEWS / f"{page}.py")).run()
        assert not at.exception, at.exception
        button = next(b for b in at.get("download_button") if b.proto.id.endswith(key))
        assert not button.proto.disabled


def test_the_fa_page_opens_from_a_prepared_link_and_writes_its_state_back():
    at = AppTest.from_file(str(VIEWS / "factor_analysis.py"), default_timeout=TIMEOUT)
    for name, value in {
        "posterior": "diagonal",
        "lr": "0.001",
        "batch": "64",
        "seed": "7",
        "points": "200",
        "point": "5",
    }.items():
        at.query_params[name] = value
    at.run()  # a link opens its page directly (a switch of page clears the URL's parameters)
    assert not at.exception, at.exception
    fa = at.session_state["session_work"]["fa"]
    assert (fa.config.posterior, fa.config.lr, fa.config.batch_size) == ("diagonal", 0.001, 64)
    assert fa.dataset.seed == 7 and len(fa.dataset.x_test) == 200
    assert at.session_state["fa_point"] == 5
    assert at.query_params["posterior"] == "diagonal" and at.query_params["point"] == "5"


def test_values_out_of_range_in_an_fa_link_are_ignored():
    at = AppTest.from_file(str(VIEWS / "factor_analysis.py"), default_timeout=TIMEOUT)
    for name, value in {"posterior": "banana", "lr": "7", "batch": "0", "points": "5", "point": "x"}.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, at.exception
    fa = at.session_state["session_work"]["fa"]
    assert (fa.config.posterior, fa.config.lr, fa.config.batch_size) == ("full", 0.01, 32)
    assert len(fa.dataset.x_test) == 1000


def test_the_vrnn_page_opens_a_generation_from_its_link():
    at = AppTest.from_file(str(VIEWS / "vrnn.py"), default_timeout=TIMEOUT)
    at.query_params["seed"] = "3"
    at.query_params["n"] = "25"
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["vrnn_seed"] == 3 and at.session_state["vrnn_n"] == 25
    assert at.query_params["seed"] == "3" and at.query_params["n"] == "25"
    bad = AppTest.from_file(str(VIEWS / "vrnn.py"), default_timeout=TIMEOUT)
    bad.query_params["n"] = "26"  # not a grid size
    bad.run()
    assert not bad.exception and bad.session_state["vrnn_n"] == 16
