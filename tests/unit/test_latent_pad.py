"""The latent pad's Python side: what it sends to the browser (plain numbers, PNG data URLs, short text) and
how it reads what the browser sends back; plus the on-disk cache of test encodings the pages start from."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch

from explorer_core.explore.clusters import plane_ranges
from explorer_core.explore.latent import Projection, build_latent_map, cached_encodings, encodings_cache_path
from explorer_core.imaging import png_bytes
from views.components import latent_pad as lp

PNG = png_bytes(np.linspace(0, 1, 28 * 28).reshape(28, 28))


def test_assets_are_files_in_the_repo_and_never_parse_html():
    for name in ("index.html", "style.css", "main.js"):
        assert (lp.ASSETS / name).is_file()
    js = (lp.ASSETS / "main.js").read_text()
    assert "export default function" in js
    for unsafe in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "eval(",
        "new Function",
        "http://",
        "https://",
    ):
        assert unsafe not in js, unsafe
    assert "http" not in (lp.ASSETS / "index.html").read_text() + (lp.ASSETS / "style.css").read_text()


def test_data_url_takes_only_png_bytes():
    url = lp.data_url(PNG)
    assert url.startswith(lp.PNG_PREFIX)
    assert base64.b64decode(url[len(lp.PNG_PREFIX) :]) == PNG
    assert lp.data_url(None) is None
    with pytest.raises(ValueError):
        lp.data_url(b"<svg onload=alert(1)>")


def test_points_payload_is_plain_rounded_numbers():
    coords = np.array([[0.123456, -1.0], [2.0, 3.987654]], np.float32)
    out = lp.points_payload(coords, np.array([3, 9]))
    assert out == {"u": [0.123, 2.0], "v": [-1.0, 3.988], "c": [3, 9]}
    json.dumps(out)
    with pytest.raises(ValueError):
        lp.points_payload(coords, np.array([1]))


def test_overlays_are_validated_numbers_and_short_text():
    line = lp.line(np.array([[0, 0], [1, 1]]), "#d62728", 2, (4, 2), closed=True)
    assert line == {
        "pts": [[0.0, 0.0], [1.0, 1.0]],
        "color": "#d62728",
        "width": 2.0,
        "dash": [4.0, 2.0],
        "closed": True,
    }
    mark = lp.mark([0.5, -0.5], "#111111", "disc", 11, text="y=3 → 7" * 10, pick=3)
    assert mark["u"] == 0.5 and mark["pick"] == 3 and len(mark["text"]) <= 24
    for bad_colour in ("red", "#12345", "#1234567", "url(x)", "</script>"):
        with pytest.raises(ValueError):
            lp.mark([0, 0], bad_colour)
    with pytest.raises(ValueError):
        lp.mark([0, 0], "#000000", shape="svg")


def test_ellipse_points_follow_the_covariance():
    """The pad draws q's ellipses with the figures' one ellipse (explorer_core.figures.common)."""
    from explorer_core.figures.common import ellipse_points

    cov = np.array([[4.0, 0.0], [0.0, 1.0]])
    pts = ellipse_points(np.array([1.0, 2.0]), cov, 2.0, n_points=64)
    assert pts.shape == (64, 2)
    assert np.abs(pts[:, 0] - 1).max() == pytest.approx(4.0, rel=1e-3)  # 2 sigma along u: 2 * 2
    assert np.abs(pts[:, 1] - 2).max() == pytest.approx(2.0, rel=1e-2)


def test_pad_data_is_json_with_the_image_and_without_points_when_held():
    kwargs = dict(
        version="abc",
        region=((-1, 1), (-2, 2)),
        bounds=((-3, 3), (-3, 3)),
        z=(0.5, np.float32(0.25)),
        ack=np.int64(4),
        image_png=PNG,
        caption="z = (0.50, 0.25)",
        colours=("#000000",),
    )
    data = lp.pad_data(points=None, **kwargs)
    text = json.dumps(data)
    assert data["points"] is None and data["image"].startswith(lp.PNG_PREFIX)
    assert data["z"] == [0.5, 0.25] and data["ack"] == 4 and data["row"] is None
    assert data["region"] == [[-1.0, 1.0], [-2.0, 2.0]]
    assert "<" not in text.replace("\\u", "")  # no markup anywhere
    with pytest.raises(ValueError):
        lp.pad_data(points=None, **{**kwargs, "region": ((1, 1), (0, 1))})
    with pytest.raises(ValueError):
        lp.pad_data(points=None, **{**kwargs, "region": ((0, float("nan")), (0, 1))})


#: the smallest pad_data arguments: a pad with no points and no image yet
BASE = dict(
    version="abc",
    points=None,
    region=((-1, 1), (-1, 1)),
    bounds=((-2, 2), (-2, 2)),
    z=(0, 0),
    ack=0,
    image_png=None,
)


def test_pad_data_carries_the_decoder_only_when_given_and_plain_fields_always():
    base = dict(BASE)
    data = lp.pad_data(**base)
    assert data["decoder"] is None and data["decoder_version"] == "" and data["image"] is None
    assert data["row_k"] == [] and data["view"] == ""
    payload = {"version": "v1", "h0": 4, "k": 10}
    data = lp.pad_data(
        **base,
        decoder=payload,
        decoder_version="v1",
        view="lambda",
        label_k=np.int64(3),
        row_k=range(10),
        caption_format="z = ({u}, {v}) and far too long a caption format",
    )
    json.dumps(data)
    assert data["decoder"] is payload and data["decoder_version"] == "v1" and data["label_k"] == 3
    assert data["row_k"] == list(range(10)) and data["view"] == "lambda"
    assert len(data["caption_format"]) <= 24 and data["caption_format"].startswith("z = ({u}, {v})")


def test_pad_data_says_how_the_canvas_is_shaped_and_whether_it_is_a_picture_only():
    base = dict(BASE)
    data = lp.pad_data(**base)  # a free canvas, as tall as asked, that a person works
    assert (data["equal_scale"], data["static"], data["frame"], data["hint_lines"]) == (False, False, None, 0)
    data = lp.pad_data(
        **base, height_px=560, equal_scale=1, static=np.bool_(True), frame=np.int64(7), hint_lines=2.0
    )
    json.dumps(data)  # plain JSON types
    assert data["height"] == 560 and data["equal_scale"] is True and data["static"] is True
    assert data["frame"] == 7 and data["hint_lines"] == 2


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"u": 1, "v": -2.5, "seq": 3}, (1.0, -2.5, 3)),
        ({"u": 1, "v": -2.5}, None),
        ({"u": float("nan"), "v": 0, "seq": 1}, None),
        ({"u": "1", "v": 0, "seq": 1}, None),
        ({"u": True, "v": 0, "seq": 1}, None),
        (None, None),
        ([1, 2, 3], None),
    ],
)
def test_read_move(value, expected):
    assert lp.read_move(value) == expected


def test_read_pick_and_zoom():
    assert lp.read_pick({"kind": "point", "i": 4}, n_points=5) == ("point", 4)
    assert lp.read_pick({"kind": "point", "i": 5}, n_points=5) is None
    assert lp.read_pick({"kind": "point", "i": -1}, n_points=5) is None
    assert lp.read_pick({"kind": "point", "i": 1.5}, n_points=5) is None
    assert lp.read_pick({"kind": "mark", "i": 2}, n_points=5, n_marks=3) == ("mark", 2)
    assert lp.read_pick({"kind": "mark", "i": 3}, n_points=5, n_marks=3) is None
    assert lp.read_pick({"kind": "other", "i": 0}, n_points=5) is None
    assert lp.read_zoom({"dir": 1, "u": 0.5, "v": 1}) == (1, 0.5, 1.0)
    assert lp.read_zoom({"dir": -1, "u": 0, "v": 0}) == (-1, 0.0, 0.0)
    assert lp.read_zoom({"dir": 2, "u": 0, "v": 0}) is None
    assert lp.read_zoom({"dir": 1, "u": float("inf"), "v": 0}) is None


class _TinyEncoder(torch.nn.Module):
    conditional = False

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(784, 4)
        self.calls = 0

    def encode(self, x, y=None):
        self.calls += 1
        return torch.distributions.Normal(self.lin(x), torch.ones(len(x), 4))


def test_encodings_are_cached_on_disk_by_weights_digest(tmp_path, monkeypatch):
    monkeypatch.setenv("AEVB_CACHE_DIR", str(tmp_path))
    model = _TinyEncoder()
    x, y = torch.rand(50, 784), torch.arange(50) % 10
    path = encodings_cache_path("ab" * 32, 50, "dequantized")
    assert str(path).startswith(str(tmp_path))
    first = cached_encodings(model, x, y, str(path))
    assert path.is_file() and model.calls == 1
    again = cached_encodings(model, x, y, str(path))
    assert model.calls == 1  # read from disk
    np.testing.assert_array_equal(again.mu, first.mu)
    np.testing.assert_allclose(again.coords, build_latent_map(model, x, y).coords, rtol=1e-5, atol=1e-6)
    # labels that do not match (another test set): recomputed, not trusted
    cached_encodings(model, x, (y + 1) % 10, str(path))
    assert model.calls == 3  # one for build_latent_map above, one here
    # a damaged file is recomputed
    path.write_bytes(b"garbage")
    cached_encodings(model, x, y, str(path))
    assert model.calls == 4


def test_plane_ranges_hold_the_points_with_a_margin():
    pts = np.array([[0.0, 0.0], [1.0, 2.0], [0.5, 1.0]])
    (u0, u1), (v0, v1) = plane_ranges(pts, quantile=1.0, margin=0.1)
    assert u0 <= -0.1 and u1 >= 1.1 and v0 <= -0.2 and v1 >= 2.2
    assert isinstance(Projection(np.zeros(2), np.eye(2), (1.0, 0.0))(np.ones(2)), np.ndarray)
