"""The latent pad's page glue (``views.components.pad_fragment``): its clamp and zoom arithmetic, written once
for every page with a pad."""

from __future__ import annotations

import pytest

from views.components import pad_fragment as pf

FULL = ((-2.0, 2.0), (-1.0, 3.0))


def test_clamp_keeps_z_inside_the_bounds():
    assert pf.clamp_uv((5.0, -9.0), FULL) == (2.0, -1.0)
    assert pf.clamp_uv((0.5, 0.5), FULL) == (0.5, 0.5)
    assert isinstance(pf.clamp(1, (0, 2)), float)


@pytest.mark.parametrize(
    ("current", "direction", "expected"),
    [(1, 1, 2), (2, 1, 4), (8, 1, 8), (8, -1, 4), (1, -1, 1), ("x", 1, 2), (3, -1, 1)],
)
def test_a_wheel_notch_steps_along_the_zooms(current, direction, expected):
    assert pf.step_zoom(current, direction) == expected


def test_the_box_zoom_shrinks_around_the_pointer_and_stays_inside():
    box = pf.box_zoom(None, FULL, 1, 0.0, 1.0)
    assert box[0][1] - box[0][0] == pytest.approx(4.0 * pf.BOX_ZOOM_STEP)
    assert box[0] == pytest.approx((-1.4, 1.4)) and box[1] == pytest.approx((-0.4, 2.4))
    corner = pf.box_zoom(box, FULL, 1, 99.0, -99.0)  # at the edge: the box is moved inside
    half = (corner[0][1] - corner[0][0]) / 2
    assert half == pytest.approx(2.0 * pf.BOX_ZOOM_STEP**2)
    assert corner[0][1] == pytest.approx(FULL[0][1]) and corner[1][0] == pytest.approx(FULL[1][0])
    assert pf.box_zoom(pf.box_zoom(corner, FULL, -1, 0, 1), FULL, -1, 0, 1) is None  # out again: all of it


def test_a_box_is_drawn_as_one_closed_dashed_line():
    assert pf.box_lines(None) == []
    (line,) = pf.box_lines(((0.0, 1.0), (2.0, 3.0)))
    assert line["closed"] and line["dash"] and line["pts"] == [[0, 2], [1, 2], [1, 3], [0, 3]]
