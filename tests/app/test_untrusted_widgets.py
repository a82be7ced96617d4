"""Widget values that arrive from a browser are untrusted input (issue 23, the hostile-class probe).

A value typed past a field's bounds, kept from a larger data set, or set from the browser's console gets the
nearest valid value or a one-line message, never an uncaught exception. AppTest sets the raw values (as a
websocket client could) and presses the buttons.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

TIMEOUT = 120
ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page(str(ROOT / "views" / page)).run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def fa_page() -> AppTest:
    return open_page("factor_analysis.py")


# ------------------------------------------------------------------------------------------ factor analysis


def test_fa_n_steps_beyond_the_room_left_is_queued_up_to_the_room(fa_page):
    at = fa_page
    fa = at.session_state["session_work"]["fa"]
    fa.enqueue("m_step", fa.pending.max_steps - 450)  # the probe: the queue had 450 steps of room left
    at.session_state["fa_n"] = 100_000
    at.button(key="fa_e").click().run()
    assert not at.exception, at.exception
    fa = at.session_state["session_work"]["fa"]
    assert fa.queued_steps <= fa.pending.max_steps
    assert any("room left" in c.value for c in at.caption), [c.value for c in at.caption]
    # a full queue: a note again, no exception
    room = fa.pending.max_steps - fa.queued_steps
    if room:
        fa.enqueue("m_step", room)
    at.button(key="fa_joint").click().run()
    assert not at.exception, at.exception
    assert any("queue is full" in c.value for c in at.caption)


def test_fa_test_point_beyond_a_smaller_data_set_is_the_last_point(fa_page):
    at = fa_page
    at.number_input(key="fa_point").set_value(999).run()
    assert not at.exception, at.exception
    at.number_input(key="fa_data_n").set_value(10)
    next(b for b in at.button if b.label == "Draw new data set").click().run()
    assert not at.exception, at.exception
    assert at.session_state["fa_point"] == 9
    assert at.number_input(key="fa_point").value == 9


def test_fa_raw_values_past_the_fields_bounds_are_brought_in(fa_page):
    at = fa_page
    at.number_input(key="fa_data_n").set_value(10**9)
    at.number_input(key="fa_data_seed").set_value(-5)
    next(b for b in at.button if b.label == "Draw new data set").click().run()
    assert not at.exception, at.exception
    fa = at.session_state["session_work"]["fa"]
    assert 10 <= len(fa.dataset.x_test) <= 20_000 and 0 <= fa.dataset.seed < 2**31


def test_fa_at_its_largest_settings_k_is_bounded(fa_page):
    """20,000 points and K = 1000 took 6 s a step and 1.5 GB: K comes down to the bound on a step's cost."""
    from explorer_core.explore.fa import MAX_SAMPLE_POINTS

    at = fa_page
    at.number_input(key="fa_k").set_value(200).run()
    assert at.session_state["session_work"]["fa"].config.n_elbo_samples == 200  # 200 x 1000 test points
    at.number_input(key="fa_data_n").set_value(20_000)
    next(b for b in at.button if b.label == "Draw new data set").click().run()
    assert not at.exception, at.exception
    fa = at.session_state["session_work"]["fa"]
    assert fa.config.n_elbo_samples * len(fa.dataset.x_test) <= MAX_SAMPLE_POINTS
    at.session_state["fa_k"] = 1000  # from the browser, past the bound
    at.run()
    assert not at.exception, at.exception
    fa = at.session_state["session_work"]["fa"]
    assert fa.config.n_elbo_samples * len(fa.dataset.x_test) <= MAX_SAMPLE_POINTS
    at.button(key="fa_joint").click().run()
    assert not at.exception, at.exception
    assert len(at.session_state["session_work"]["fa"].model_samples(20_000)) <= 5_000


# ------------------------------------------------------------------------------------- the drawing canvas


def _png(width: int, height: int) -> bytes:
    """A real PNG of ``width`` x ``height`` (black, one white square), as a browser canvas sends it."""
    import io

    from PIL import Image

    img = Image.new("RGBA", (width, height), (0, 0, 0, 255))
    img.paste((255, 255, 255, 255), (width // 3, height // 3, width // 2, height // 2))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _huge_declared_png(side: int = 12_000) -> bytes:
    """A PNG that declares ``side`` x ``side`` pixels in a few kB (a decompression bomb)."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        import struct

        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    import struct

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)  # 8-bit greyscale
    raw = zlib.compress(b"\x00" * (side + 1) * side, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def _data_url(data: bytes, mime: str = "image/png") -> str:
    import base64

    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def set_canvas_value(monkeypatch, url) -> None:
    """Replace the canvas's value from the browser (as the probe did from the console). Call after a page
    ran once (the package registers its component when first imported inside the app)."""
    import streamlit_drawable_canvas as sdc

    def fake_canvas(*args, return_image_data=False, **kwargs):
        return sdc.CanvasResult(json_data=None, image_data_url=url, return_image_data=return_image_data)

    monkeypatch.setattr(sdc, "st_canvas", fake_canvas)


@pytest.fixture
def vae_page(tmp_path_factory, monkeypatch):
    import torch

    from explorer_core.artifacts import save_model
    from explorer_core.models.vae import VAE, VAEConfig

    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    save_model(
        VAE(VAEConfig(latent_dim=2, hidden=(32,), dropout=0.0)),
        "vae",
        folder,
        "tiny-vae",
        meta={"preprocessing": "dequantized", "test_metrics": {"elbo": -500.0, "n_images": 10000}},
    )
    monkeypatch.setenv("AEVB_MODEL_DIRS", str(folder))

    def open_vae() -> AppTest:
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.session_state["vae_model"] = str(folder / "tiny-vae.json")
        at.run()
        at.switch_page(str(ROOT / "views" / "vae.py")).run()
        return at

    return open_vae


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("hello", "not a PNG data URL"),  # malformed: ValueError (not enough values to unpack) before
        (_data_url(b"GIF89a not an image at all"), "not a PNG"),  # PIL.UnidentifiedImageError before
        (_data_url(_png(64, 64), "image/jpeg")[:40] + "%%%", "not a PNG"),
        (_data_url(_huge_declared_png()), "12000 × 12000"),  # refused by its declared size
    ],
)
def test_a_canvas_value_that_is_not_a_small_png_is_a_caption(vae_page, monkeypatch, url, why):
    at = vae_page()
    set_canvas_value(monkeypatch, url)
    at.run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption]
    assert any("Drawing not read" in c and why in c for c in captions), captions


def test_a_real_drawing_is_still_read(vae_page, monkeypatch):
    at = vae_page()
    set_canvas_value(monkeypatch, _data_url(_png(448, 448)))
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["vae_drawing"] is not None
    # a new drawing becomes the encoder's input (the source radio follows it)
    assert at.session_state["vae_source"] == "drawing"
    assert any(c.startswith("your drawing") for i in at.image for c in i.captions)


def test_the_declared_size_is_read_before_pillow_decodes(monkeypatch):
    """A huge PNG never reaches Pillow: its IHDR is read first."""
    import PIL.Image

    from views.components.images import CanvasImageError, png_rgba, png_size

    assert png_size(_huge_declared_png()) == (12_000, 12_000)
    opened = []
    monkeypatch.setattr(PIL.Image, "open", lambda *a, **k: opened.append(a))
    with pytest.raises(CanvasImageError, match="12000 × 12000"):
        png_rgba(_huge_declared_png())
    assert opened == []


# ------------------------------------------------------------------------------------------------- seeds


def _tiny_models(folder: Path) -> Path:
    import torch

    from explorer_core.artifacts import save_model
    from explorer_core.models.gmvae import GMVAE, GMVAEConfig
    from explorer_core.models.vae import CVAE, VAEConfig

    torch.manual_seed(0)
    save_model(
        CVAE(VAEConfig(latent_dim=2, hidden=(32,), dropout=0.0)),
        "cvae",
        folder,
        "tiny-cvae",
        meta={"preprocessing": "dequantized", "test_metrics": {"elbo": -500.0, "n_images": 10000}},
    )
    save_model(GMVAE(GMVAEConfig(hidden=(32,), latent_dim=4)), "gmvae", folder, "tiny-gmvae", meta={})
    return folder


def test_gmvae_reseed_at_the_largest_seed_writes_a_seed_its_url_parser_takes(tmp_path, monkeypatch):
    from tests.app.conftest import open_page as open_model_page
    from views.components.page_state import SEED_MAX, int_in

    folder = _tiny_models(tmp_path)
    at = open_model_page("gmvae", folder, "tiny-gmvae", monkeypatch)
    at.session_state["gmvae_seed"] = SEED_MAX
    at.run()
    at.button(key="gmvae_reseed").click().run()
    assert not at.exception, at.exception
    seed = int_in(0, SEED_MAX)(at.query_params["seed"])  # 2147483648 before: rejected, the link opened 0
    assert seed != SEED_MAX and seed == at.session_state["gmvae_seed"]


def test_cvae_regenerate_at_the_largest_seed_does_not_go_back_to_0(tmp_path, monkeypatch):
    from tests.app.conftest import open_page as open_model_page
    from views.components.page_state import SEED_MAX

    folder = _tiny_models(tmp_path)
    at = open_model_page("cvae", folder, "tiny-cvae", monkeypatch)
    at.number_input(key="cvae_grid_seed").set_value(5).run()
    at.button(key="cvae_regenerate").click().run()
    assert at.session_state["cvae_grid_seed"] == 6
    at.number_input(key="cvae_grid_seed").set_value(SEED_MAX).run()
    at.button(key="cvae_regenerate").click().run()
    assert not at.exception, at.exception
    assert at.session_state["cvae_grid_seed"] not in (0, SEED_MAX)
    assert at.query_params["seed"] == str(at.session_state["cvae_grid_seed"])


# ------------------------------------------------------------------------------------------- the job manager


def test_clearing_streamlits_caches_never_starts_a_second_job_manager(tmp_path, monkeypatch):
    """Streamlit takes ``clear_cache`` from any connection: each clear and Training-page run left one more
    supervising thread running before."""
    import threading

    import streamlit as st

    monkeypatch.setenv("AEVB_RUNS_DIR", str(tmp_path / "runs"))

    def supervisors() -> int:
        return sum(t.name == "aevb-job-manager" and t.is_alive() for t in threading.enumerate())

    at = open_page("training.py")
    before = supervisors()
    assert before >= 1
    for _ in range(3):
        st.cache_resource.clear()  # what a visitor's clear_cache message does
        at.run()
        assert not at.exception, at.exception
    assert supervisors() == before


# --------------------------------------------------------------------------------------- the compute budget


@pytest.fixture
def class_mode(monkeypatch):
    monkeypatch.setenv("AEVB_CLASS_MODE", "1")
    monkeypatch.setenv("AEVB_OPERATOR_PASSPHRASE", "correct horse")


@pytest.fixture
def busy_server():
    """Every slot of the process's budget held by other visitors (released at the end)."""
    from explorer_core.compute_budget import process_budget

    budget = process_budget()
    others = [f"other-visitor-{i}/fa" for i in range(budget.slots)]
    for other in others:
        assert budget.acquire(other).granted
    yield budget, others
    for other in others:
        budget.release(other)


def infos(at: AppTest) -> list[str]:
    return [i.value for i in at.info]


@pytest.mark.usefixtures("class_mode")
def test_play_on_a_busy_server_says_so_and_starts_on_the_visitors_turn(fa_page, busy_server):
    budget, others = busy_server
    at = fa_page
    at.button(key="fa_play").click().run()
    assert not at.exception, at.exception
    assert at.session_state["session_work"]["fa"].steps == 0  # nothing ran
    assert not at.session_state["fa_player"].running
    busy = [i for i in infos(at) if "server is busy" in i]
    assert busy and "next in line" in busy[0], infos(at)
    assert any("server is busy" in t.value for t in at.toast)  # seen at once, wherever the panel sits
    assert at.button(key="fa_slot_leave")
    at.run()  # a poll of the line (the fragment's timer; AppTest never fires it): still waiting
    assert any("next in line" in i for i in infos(at))
    for other in others:
        budget.release(other)  # a slot frees up
    at.run()  # the next poll: the visitor's turn, Play starts by itself
    assert not at.exception, at.exception
    assert at.session_state["fa_player"].running
    assert not any("server is busy" in i for i in infos(at))
    at.run()
    assert at.session_state["session_work"]["fa"].steps > 0
    holders = budget.snapshot()["holders"]
    assert any(h.endswith("/fa") and not h.startswith("other") for h in holders)
    at.button(key="fa_play").click().run()  # Pause gives the slot back
    assert not any(h.endswith("/fa") and not h.startswith("other") for h in budget.snapshot()["holders"])


@pytest.mark.usefixtures("class_mode")
def test_leaving_the_line_gives_up_the_place(fa_page, busy_server):
    budget, _ = busy_server
    at = fa_page
    at.button(key="fa_play").click().run()
    assert len(budget.snapshot()["waiting"]) == 1
    at.button(key="fa_slot_leave").click().run()
    assert not at.exception, at.exception
    assert budget.snapshot()["waiting"] == []
    assert not any("server is busy" in i for i in infos(at))


@pytest.mark.usefixtures("class_mode")
def test_the_operator_plays_on_a_busy_server(fa_page, busy_server):
    at = fa_page
    at.session_state["tr_operator"] = True  # gave the passphrase on the Training page
    at.button(key="fa_joint").click().run()
    assert not at.exception, at.exception
    assert at.session_state["session_work"]["fa"].steps > 0
    assert not any("server is busy" in i for i in infos(at))


# ------------------------------------------------------------------------------------------- Watch it learn


@pytest.fixture
def watch_page() -> AppTest:
    from explorer_core.data import MNISTUnavailable, load_mnist_splits

    try:
        load_mnist_splits()
    except MNISTUnavailable as err:
        pytest.skip(f"MNIST is not available: {err}")
    return open_page("watch.py")


def _texts(at: AppTest) -> str:
    parts = [e.value for e in [*at.error, *at.success, *at.info, *at.caption, *at.markdown]]
    return "\n".join(str(p) for p in parts)


@pytest.mark.usefixtures("class_mode")
def test_a_visitor_cannot_export_to_the_servers_disk(watch_page, tmp_path, monkeypatch):
    """25 presses of Export wrote 25 runs (68 MB) before: in class mode it needs the passphrase."""
    from explorer_core.jobs import list_runs

    runs = tmp_path / "runs"
    monkeypatch.setenv("AEVB_RUNS_DIR", str(runs))
    at = watch_page
    at.number_input(key="watch_n").set_value(5)
    at.button(key="watch_joint").click().run()
    for _ in range(50):
        if not at.session_state["watch_player"].running:
            break
        at.run()
    button = at.button(key="watch_export")
    assert button.disabled and "passphrase" in button.help
    for _ in range(3):  # clicks sent anyway (a websocket client ignores "disabled"; Streamlit drops them)
        at.button(key="watch_export").proto.disabled = False
        at.button(key="watch_export").click().run()
        assert not at.exception, at.exception
    assert not runs.exists() or not list_runs(runs)
    # the operator exports, and sees no server path
    at.session_state["tr_operator"] = True
    at.run()
    at.button(key="watch_export").click().run()
    assert not at.exception, at.exception
    assert any("Exported as run" in s.value for s in at.success), _texts(at)
    assert str(runs) not in _texts(at) and str(tmp_path) not in _texts(at)
    assert len(list_runs(runs)) == 1


def test_watch_refuses_a_configuration_above_the_sessions_memory(watch_page):
    """2000 validation images with k = 256 took 4.7 GB: refused by its estimate before anything is built."""
    at = watch_page
    before = at.session_state["session_work"]["watch"]
    at.number_input(key="watch_cfg_eval").set_value(2000)
    at.button(key="FormSubmitter:watch_config-Start a new run").click().run()
    assert not at.exception, at.exception
    assert at.session_state["session_work"]["watch"] is not before  # 2000 x 16: fits
    assert at.session_state["session_work"]["watch"].config.n_eval == 2000
    at.select_slider(key="watch_k").set_value(256).run()  # 2000 x 256 from the controls: refused
    assert not at.exception, at.exception
    assert at.session_state["session_work"]["watch"].config.iwae_k == 16
    assert at.session_state["watch_k"] == 16
    assert any("k not changed" in e.value and "MB" in e.value for e in at.error), _texts(at)
    # and from the form: k = 256 with 100 images first, then 2000 images
    at.number_input(key="watch_cfg_eval").set_value(100)
    at.button(key="FormSubmitter:watch_config-Start a new run").click().run()
    at.select_slider(key="watch_k").set_value(256).run()
    assert at.session_state["session_work"]["watch"].config.iwae_k == 256
    kept = at.session_state["session_work"]["watch"]
    at.number_input(key="watch_cfg_eval").set_value(2000)
    at.button(key="FormSubmitter:watch_config-Start a new run").click().run()
    assert not at.exception, at.exception
    assert at.session_state["session_work"]["watch"] is kept
    assert any("Cannot start this run" in e.value and "needs about" in e.value for e in at.error)


# ------------------------------------------------------------------------------------ every page's fields

EVERY_PAGE = ["factor_analysis", "vae", "cvae", "gmvae", "vrnn", "watch", "training"]
RAW_NUMBERS = [10**12, -(10**12), 2**31, -1]
RAW_TEXTS = ["", "nan", "1e999", "-", "9" * 60, "<script>alert(1)</script>", "../../etc/passwd"]


@pytest.mark.parametrize("page", EVERY_PAGE)
def test_every_number_and_text_field_takes_raw_values_without_an_exception(page):
    """What a websocket client can send for each field of each page (the shipped models): out-of-range
    numbers and garbage text give the nearest valid value or a one-line message, never an exception."""
    if page == "watch":
        from explorer_core.data import MNISTUnavailable, load_mnist_splits

        try:
            load_mnist_splits()
        except MNISTUnavailable as err:
            pytest.skip(f"MNIST is not available: {err}")
    at = open_page(f"{page}.py")
    keys = [w.key for w in at.number_input if w.key]
    for key in keys:
        for value in RAW_NUMBERS:
            widgets = [w for w in at.number_input if w.key == key]
            if not widgets:
                break
            widgets[0].set_value(value).run()
            assert not at.exception, (key, value, at.exception)
    for key in [w.key for w in at.text_input if w.key]:
        for text in RAW_TEXTS:
            widgets = [w for w in at.text_input if w.key == key]
            if not widgets:
                break
            widgets[0].input(text).run()
            assert not at.exception, (key, text, at.exception)
    if page != "training":  # (its form starts a training process)
        for submit in [b for b in at.button if (b.key or "").startswith("FormSubmitter:")]:
            for key in keys:  # every field of the form at its raw extreme, then submitted
                widgets = [w for w in at.number_input if w.key == key]
                if widgets:
                    widgets[0].set_value(RAW_NUMBERS[0])
            submit.click().run()
            assert not at.exception, (submit.key, at.exception)


@pytest.mark.usefixtures("class_mode")
def test_vrnn_play_waits_in_line_but_next_row_never_does(busy_server):
    at = open_page("vrnn.py")
    if "vrnn_play" not in [b.key for b in at.button]:
        pytest.skip("no VRNN model shipped")
    at.button(key="vrnn_play").click().run()
    assert not at.exception, at.exception
    assert at.session_state["vrnn_gen"].rows == 0
    assert any("server is busy" in i and "in line" in i for i in infos(at)), infos(at)
    at.button(key="vrnn_next").click().run()  # one click, one row: answered at once
    assert not at.exception, at.exception
    assert at.session_state["vrnn_gen"].rows == 1
