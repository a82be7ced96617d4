"""The true posterior beside q(z|x) on the VAE page, with the shipped 2-D model (vae-cb-l2)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from explorer_core.artifacts import PRETRAINED_DIR
from tests.app.conftest import APP, TIMEOUT, VIEWS, pad_data

P = "vae"


@pytest.fixture
def vae_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page(str(VIEWS / "vae.py")).run()
    assert not at.exception, at.exception
    if "vae-cb-l2" not in str(at.session_state[f"{P}_model"]):
        pytest.skip("the shipped 2-D VAE is not there")
    return at


def metric(at: AppTest, label: str) -> float:
    return float(next(m.value for m in at.metric if m.label == label))


def test_the_posterior_is_drawn_with_the_evidence_the_gap_and_the_iwae_bounds(vae_page):
    at = vae_page
    before = len(pad_data(at, "vae_pad")["overlays"]["lines"])
    at.checkbox(key=f"{P}_post_show").check().run()
    assert not at.exception, at.exception
    evidence, elbo, gap = (metric(at, k) for k in ("Evidence log p(x)", "ELBO of q_φ", "Gap KL(q‖p)"))
    assert elbo <= evidence and gap == pytest.approx(evidence - elbo, abs=0.01)  # metrics: 2 decimals
    table = next(m.value for m in at.markdown if "IWAE bound" in m.value)
    assert "| 1,000 |" in table
    # the posterior's contours join q's ellipses on the pad
    assert len(pad_data(at, "vae_pad")["overlays"]["lines"]) > before


def test_play_fits_q_star_and_splits_the_gap(vae_page):
    at = vae_page
    at.checkbox(key=f"{P}_post_show").check().run()
    at.button(key=f"{P}_qstar_play").click().run()
    for _ in range(60):  # the fragment's timer, which AppTest never fires
        if not at.session_state[f"{P}_qstar_player"].running:
            break
        at.run()
    assert not at.exception, at.exception
    assert not at.session_state[f"{P}_qstar_player"].running
    split = next(m.value for m in at.markdown if m.value.startswith("**The gap split**"))
    assert "approximation" in split and "amortization" in split
    evidence, elbo = metric(at, "Evidence log p(x)"), metric(at, "ELBO of q_φ")
    numbers = [float(t) for t in split.replace("(", " ").replace(")", " ").split() if _is_number(t)]
    gap, approximation, amortization = numbers[0], numbers[1], numbers[2]
    assert approximation >= -1e-3 and amortization >= -1e-3  # q* is at least as good as q_phi
    assert approximation + amortization == pytest.approx(gap, abs=3e-3)
    assert gap == pytest.approx(evidence - elbo, abs=2e-2)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_the_cvae_posterior_is_computed_under_the_images_label():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page(str(VIEWS / "cvae.py")).run()
    assert not at.exception, at.exception
    if "cvae-cb-l2" not in str(at.session_state["cvae_model"]):
        pytest.skip("the shipped 2-D CVAE is not there")
    at.checkbox(key="cvae_post_show").check().run()
    assert not at.exception, at.exception
    evidence, elbo = metric(at, "Evidence log p(x)"), metric(at, "ELBO of q_φ")
    assert elbo <= evidence
    assert metric(at, "Gap KL(q‖p)") == pytest.approx(evidence - elbo, abs=0.01)
    assert "(y = " in next(m.value for m in at.markdown if m.value.endswith("nats per image"))


def test_an_l20_model_splits_its_gap_on_request_with_the_lower_bound_caveat():
    path = PRETRAINED_DIR / "vae-cb-l20.json"
    if not path.is_file():
        pytest.skip("the shipped L = 20 VAE is not there")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[f"{P}_model"] = str(path)
    at.run()
    at.switch_page(str(VIEWS / "vae.py")).run()
    assert not at.exception, at.exception
    assert "L = 20" in " ".join(c.value for c in at.sidebar.caption)
    assert any("a lower bound" in c.value for c in at.caption)
    at.button(key=f"{P}_split_go").click().run(timeout=300)
    assert not at.exception, at.exception
    evidence, elbo = metric(at, "log p(x) ≥"), metric(at, "ELBO of q_φ")
    approximation, amortization = metric(at, "Approximation gap (est.)"), metric(at, "Amortization gap")
    assert amortization >= 0 and evidence >= elbo
    assert approximation + amortization == pytest.approx(evidence - elbo, abs=1e-2)
