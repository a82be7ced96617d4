"""No emoji in what the pages show (issue 33, "Icons"): an emoji needs an emoji font on the presenting machine
and is an empty box without one (Debian's Chromium, as shipped). Labels, titles, page icons and ``icon=``
arguments use Streamlit's Material icons (``:material/name:``), whose font ships with Streamlit; every such
name must be one Streamlit knows.

Checked in the source of the app: ``app.py``, ``views/`` (Python, and the canvas components' JS, HTML and
CSS) and ``explorer_core/`` (figure titles and texts the pages show)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.material_icon_names import ALL_MATERIAL_ICONS

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = {".py", ".js", ".html", ".css"}
#: emoji and pictographs, miscellaneous symbols and dingbats, arrows and shapes with emoji forms, the media
#: controls (pause, stop, next: no glyph in DejaVu), and the emoji presentation selector U+FE0F
EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u23e9-\u23fa\ufe0f]")
#: text symbols in those ranges that DejaVu Sans draws as text (a check mark, a multiplication cross, the
#: sidebar's chevron named in a comment): allowed
TEXT_SYMBOLS = set("\u2713\u2715\u276f")
MATERIAL = re.compile(r":material/([A-Za-z0-9_]+):")


def source_files() -> list[str]:
    """The app's source files, relative to the repository, sorted."""
    found = [ROOT / "app.py"]
    for folder in ("views", "explorer_core"):
        found += [p for p in (ROOT / folder).rglob("*") if p.suffix in SUFFIXES and p.is_file()]
    return sorted(str(p.relative_to(ROOT)) for p in found)


def emoji_in(text: str) -> list[tuple[int, str]]:
    """(line number, character) of every emoji in ``text``, text symbols aside."""
    return [
        (number, match.group())
        for number, line in enumerate(text.splitlines(), 1)
        for match in EMOJI.finditer(line)
        if match.group() not in TEXT_SYMBOLS
    ]


def test_the_scan_finds_emoji_and_spares_text_symbols():
    assert [c for _, c in emoji_in('st.title("🌀 VAE")\nicon="⚠️"\n"⏸ Pause" "⬇ PNG"')] == [
        "🌀",
        "⚠",
        "\ufe0f",
        "⏸",
        "⬇",
    ]
    assert emoji_in("ticks ✓ ✕ ❯ ▶ ↺ → ≤ ‖ … × σ −") == []
    assert "app.py" in source_files() and "views/components/canvas.js" in source_files()


@pytest.mark.parametrize("path", source_files())
def test_no_emoji_in_the_source(path):
    found = emoji_in((ROOT / path).read_text(encoding="utf-8"))
    assert not found, f"{path}: emoji at lines {found} (use a Material icon, :material/name:)"


def test_material_icons_exist():
    """Every ``:material/name:`` in the source is a name Streamlit's font has (a wrong one is an error)."""
    unknown = {
        (path, name)
        for path in source_files()
        for name in MATERIAL.findall((ROOT / path).read_text(encoding="utf-8"))
        if name not in ALL_MATERIAL_ICONS
    }
    assert not unknown


def test_page_icons_are_material_icons():
    from views.pages import PAGES

    for facts in PAGES.values():
        assert MATERIAL.fullmatch(facts.icon) and facts.icon.split("/")[1][:-1] in ALL_MATERIAL_ICONS, facts
