"""The README says what the code does: decision level two's rules and thresholds, and the
rules about the output folder, signals and exit statuses."""
from __future__ import annotations

import re
from pathlib import Path

from nmf4d.config import SelectionConfig
from nmf4d.exits import EXIT_INTERRUPTED, EXIT_TERMINATED

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n**", start + len(title))
    return README[start:end]


def test_level_two_rules_match_select_k():
    import nmf4d.select_k as select_k

    text = _section("**Decision level two of nmf4d 0.1")
    rules = re.findall(r"^(\d)\. ", text, flags=re.M)
    code_rules = re.findall(r"^(\d)\. \*", select_k.__doc__, flags=re.M)
    assert rules == code_rules == ["1", "2", "3", "4"]
    c = SelectionConfig()
    assert f"SSIM ≥ {c.ssim_max:g}" in text
    assert f"r ≥ {c.corr_max:g}" in text
    assert f"{c.min_gain:.1%}".replace("%", " %") in text
    assert "max(3, 0.2 %)" in text and c.min_size(10_000) == 20 and c.min_size(10) == 3


def test_clusters_rule_matches_the_code():
    import nmf4d.clustering as cl

    text = " ".join(_section("**Decision level two (departure").split())
    c = SelectionConfig()
    assert c.rule == "clusters" and "the default" in text
    assert cl.Z_MIN == c.z_min and f"z ≥ {c.z_min:g}" in text and f"`Z_MIN` {cl.Z_MIN:g}" in text
    assert cl.SHARED_MIN == c.shared_min and f"`SHARED_MIN` {cl.SHARED_MIN:g}" in text
    assert f"`STRENGTH_MIN` {cl.STRENGTH_MIN:g}" in text and f"≥ {cl.STRENGTH_MIN:g}" in text
    assert cl.UBIQUITY == c.ubiquity and f"≥ {cl.UBIQUITY:.0%}".replace("%", " %") in text
    assert cl.CONTRAST == c.contrast and f"≥ {cl.CONTRAST:g} times" in text
    assert f"{cl.TOL_MIN_PX:g}–{cl.TOL_MAX_PX:g} px" in text
    assert f"above {cl.SPOT_Z:g} noise sigmas" in text and "a tenth" in text and cl.SPOT_REL == 0.1
    assert "the lower median of `N(r)`" in text


def test_output_rules_are_documented():
    text = _section("**What happens to OUT")
    for words in (".tmp-", "flock", "--overwrite", "results.h5", "exits 2", "umask",
                  str(EXIT_INTERRUPTED), str(EXIT_TERMINATED), "nmf4d: warning:", "-q"):
        assert words in text, words
