"""Pages under streamlit.testing.v1.AppTest: they render without exceptions and react to the controls."""

import gc
import json
import re
import weakref
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from views.components.player import PLAY_LABEL

TIMEOUT = 60
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


@pytest.fixture
def fa_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page(str(ROOT / "views" / "factor_analysis.py")).run()
    assert not at.exception
    return at


def fa_playing(at: AppTest) -> bool:
    """Whether the FA page's player runs (views/components/player.py)."""
    return at.session_state["fa_player"].running


def play_out(at: AppTest, max_frames: int = 50) -> None:
    """Rerun until the queued steps are done (the fragment's timer, which AppTest never fires)."""
    for _ in range(max_frames):
        if not fa_playing(at):
            return
        at.run()
    raise AssertionError("the queue did not drain")


def test_home_lists_the_pages_and_the_device():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.title[0].value == "AEVB Explorer"
    assert any("torch" in c.value for c in at.sidebar.caption)
    assert "E-step" in at.markdown[0].value and "M-step" in at.markdown[0].value


def test_home_shows_a_card_per_explorer_with_a_picture_and_a_link():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    links = {link.proto.page for link in at.get("page_link")}
    expected = {"factor-analysis", "vae", "watch", "cvae", "gmvae", "vrnn", "training"}
    assert expected <= links, links
    # one picture per card, drawn from the shipped models (pretrained/cards, or computed when missing)
    assert len(at.get("image")) == len(expected)
    assert all(img.proto.imgs[0].url.endswith(".png") for img in at.get("image"))


def test_card_pictures_are_computed_from_the_models(tmp_path):
    from explorer_core.cards import CARDS, CardUnavailableError, card_png, write_cards

    assert card_png("factor_analysis").startswith(b"\x89PNG")  # needs no model: the FA data and its MLE
    with pytest.raises(CardUnavailableError):
        card_png("vae", model_dir=tmp_path)  # no model there: no picture, and the page shows none
    done = write_cards(tmp_path / "cards", model_dir=tmp_path)
    assert set(done) == set(CARDS) and (tmp_path / "cards" / "factor_analysis.png").exists()
    assert done["vrnn"].startswith("skipped")


def test_e_step_changes_the_elbo_and_not_the_evidence(fa_page):
    at = fa_page
    assert metric(at, "Step") == "0"
    elbo, evidence = metric(at, "Test ELBO (estimate)"), metric(at, "Exact evidence")
    at.number_input(key="fa_n").set_value(50)
    at.button(key="fa_e").click().run()
    assert not at.exception
    assert int(metric(at, "Step")) > 0  # the first frame runs at once (all 50 unless the machine is busy)
    play_out(at)
    assert metric(at, "Step") == "50"
    assert metric(at, "Test ELBO (estimate)") != elbo
    assert metric(at, "Exact evidence") == evidence
    fa = at.session_state["session_work"]["fa"]
    assert set(fa.history.phase[1:]) == {"e_step"}
    assert not fa_playing(at)  # nothing left to stream


def test_fa_work_released_while_the_tab_was_gone_starts_afresh_with_a_word(fa_page):
    """The server lets go of a session's experiment once its tab has been gone a while
    (explorer_core.session_work); the tab that comes back gets a fresh one and is told why."""
    at = fa_page
    at.button(key="fa_e").click().run()
    play_out(at)
    work = at.session_state["session_work"]
    old = weakref.ref(work["fa"])
    assert old().steps > 0
    work.release()  # what the sweeper does to a session gone longer than its grace
    gc.collect()
    assert old() is None  # nothing of the page (its names, its fragments) still holds the experiment
    at.run()
    assert not at.exception
    assert work["fa"].steps == 0
    assert metric(at, "Step") == "0"
    assert any("let go of its run" in t.value for t in at.toast)
    at.run()
    assert not any("let go of its run" in t.value for t in at.toast)  # said once


def component_data(at: AppTest, key: str) -> dict:
    """The data sent to the components v2 element mounted with ``key``."""
    found = [el for el in at.get("bidi_component") if el.proto.id.endswith(f"-{key}")]
    assert found, [el.proto.id for el in at.get("bidi_component")]
    return json.loads(found[0].proto.json)


def test_fa_frames_send_only_what_changes(fa_page):
    at = fa_page
    scatter = component_data(at, "fa_scatter")
    assert [s["name"] for s in scatter["static"]["sets"]] == ["test data"]  # the browser lacks it yet
    assert [s["name"] for s in scatter["sets"]] == ["model samples", "chosen test point"]
    assert len(scatter["sets"][0]["x"]) == 1000 and scatter["view_key"] == "fa"
    curves = component_data(at, "fa_curves")
    assert len(curves["panels"][0]["lines"][0]["y"]) == 1  # the initial model only
    frame = curves["frame"]
    at.number_input(key="fa_n").set_value(30)
    at.button(key="fa_e").click().run()
    play_out(at)
    curves = component_data(at, "fa_curves")
    assert curves["frame"] > frame
    evidence, elbo = (line["y"] for line in curves["panels"][0]["lines"])
    assert len(evidence) == len(elbo) == 31 and len(set(evidence)) == 1  # E-steps never move the evidence
    assert [b["label"] for b in curves["panels"][0]["bands"]] == ["E"]  # the E-phase is shaded
    assert curves["panels"][1]["y"]["log"]  # the exact gap, on a log scale
    assert component_data(at, "fa_scatter")["ranges"] == scatter["ranges"]  # fixed axes: no rescaling
    ellipses = component_data(at, "fa_latent")
    assert ellipses["title"] == "Latent space for test point 0" and len(ellipses["panels"][0]["lines"]) == 4
    # the browser reports the test data it holds: from then on only the samples travel
    at.session_state["fa_scatter"] = {"have": scatter["version"]}
    at.run()
    assert component_data(at, "fa_scatter")["static"] is None


def test_m_step_moves_the_evidence_and_reset_starts_again(fa_page):
    at = fa_page
    evidence = metric(at, "Exact evidence")
    at.number_input(key="fa_n").set_value(20)
    at.button(key="fa_m").click().run()
    play_out(at)
    assert metric(at, "Exact evidence") != evidence
    at.button(key="fa_reset").click().run()
    assert metric(at, "Step") == "0" and metric(at, "Exact evidence") == evidence


def test_fa_text_after_e100_then_m100_agrees_with_the_chart(fa_page):
    """Issue 33, item 3: after E-step x 100 then M-step x 100 the text once said "the gap grows" while the
    chart's gap fell from about 2.2 to 0.26. Each word on the M-phase now matches the chart's own data, and
    the default y range shows the gap (the random start clipped and marked)."""
    at = fa_page
    at.number_input(key="fa_n").set_value(100)
    for button in ("fa_e", "fa_m"):
        at.button(key=button).click().run()
        assert not at.exception
        play_out(at, max_frames=200)
    assert metric(at, "Step") == "200"
    curves = component_data(at, "fa_curves")
    upper, lower = curves["panels"]
    steps = upper["lines"][0]["x"]
    assert steps[100] == 100.0 and steps[200] == 200.0  # 201 points: nothing thinned
    evidence, gap = upper["lines"][0]["y"], lower["lines"][0]["y"]
    reading = next(m.value for m in at.markdown if m.value.startswith("Last phase:"))
    assert "**M-step** × 100 (steps 101–200;" in reading
    chart = {
        "evidence log p(x)": (evidence[100], evidence[200]),
        "gap": (gap[100], gap[200]),
        "exact ELBO": (evidence[100] - gap[100], evidence[200] - gap[200]),
    }
    tolerance = 1e-4  # PHASE_CHANGE_TOLERANCE
    for name, (before, after) in chart.items():
        delta = after - before
        assert abs(delta) > 10 * tolerance  # far from the tolerance: the chart's rounding cannot flip it
        word = "rose" if delta > 0 else "fell"
        said = re.search(rf"the {re.escape(name)} (rose|fell|stayed)(?: by (\d+\.\d{{4}}))?", reading)
        assert said and said.group(1) == word, (name, delta, reading)
        assert float(said.group(2)) == pytest.approx(abs(delta), abs=2e-4)
    assert gap[200] < gap[100] and "grow" not in reading  # the gap fell, and the text says so
    lo, hi = upper["y"]["range"]
    latest = (evidence[200], upper["lines"][1]["y"][200])
    assert lo <= min(latest) and max(latest) <= hi
    assert gap[200] / (hi - lo) > 0.04  # a visible share of the panel (it was 0.6 %)
    assert "step 0: ELBO" in upper["title"] and upper["title"].endswith("↓")


def test_paper_schedule_queues_4000_steps_and_streams_them(fa_page):
    at = fa_page
    at.select_slider(key="fa_frame").set_value(50)
    at.button(key="fa_paper").click().run()
    fa = at.session_state["session_work"]["fa"]
    assert 0 < fa.steps <= 100  # at most two frames of 50 (fewer when a frame's time budget runs out)
    assert fa.steps + fa.queued_steps == 4000
    queued = fa.queued_steps
    assert fa_playing(at)  # the fragment timer takes over (run_every never fires in AppTest)
    at.button(key="fa_play").click().run()  # pause
    assert not fa_playing(at) and fa.queued_steps == queued
    assert at.button(key="fa_play").label == PLAY_LABEL
    at.button(key="fa_play").click().run()  # ▶ Play goes on with the queue
    assert fa_playing(at) and fa.queued_steps < queued
    assert set(fa.history.phase[1:]) == {"e_step"}  # no joint step slipped in


def test_fa_free_play_then_schedule_runs_the_schedule_unmixed(fa_page):
    at = fa_page
    at.button(key="fa_play").click().run()  # nothing queued: joint steps until paused
    # free steps never stay queued
    assert fa_playing(at) and at.session_state["session_work"]["fa"].queued_steps == 0
    at.run()
    fa = at.session_state["session_work"]["fa"]
    joint = fa.steps
    assert joint > 0 and set(fa.history.phase[1:]) == {"joint"}
    at.select_slider(key="fa_frame").set_value(500)
    at.button(key="fa_paper").click().run()
    for _ in range(20):
        at.run()
        if fa.steps > joint + 1000:
            break
    phases = [s[0] for s in fa.history.phase_segments()]
    assert phases[:3] == ["joint", "e_step", "m_step"][: len(phases)]
    assert fa.steps + fa.queued_steps == joint + 4000


def test_changing_the_posterior_family_starts_a_new_run(fa_page):
    at = fa_page
    at.button(key="fa_joint").click().run()
    at.selectbox(key="fa_posterior").set_value("diagonal").run()
    fa = at.session_state["session_work"]["fa"]
    assert fa.config.posterior == "diagonal" and fa.steps == 0
    assert not at.exception


def test_new_data_set_from_the_form(fa_page):
    at = fa_page
    at.number_input(key="fa_data_seed").set_value(7)
    at.number_input(key="fa_data_n").set_value(200)
    submit = next(b for b in at.button if b.label == "Draw new data set")
    submit.click().run()
    fa = at.session_state["session_work"]["fa"]
    assert fa.dataset.seed == 7 and len(fa.dataset.x_test) == 200
    assert not at.exception


def test_a_note_where_continuous_bernoulli_and_bernoulli_elbos_sit_side_by_side():
    # the shipped VAEs have both likelihoods (+1820 beside -92.7); the GMVAEs are all Bernoulli
    from views._models import LIKELIHOOD_NOTE

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page(str(ROOT / "views" / "vae.py")).run()
    assert not at.exception, at.exception
    assert LIKELIHOOD_NOTE in [c.value for c in at.sidebar.caption]
    at.switch_page(str(ROOT / "views" / "gmvae.py")).run()
    assert not at.exception, at.exception
    assert LIKELIHOOD_NOTE not in [c.value for c in at.sidebar.caption]
