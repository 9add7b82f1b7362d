"""nmf4d.index.phases: CIF files to orix phases, and their errors."""
import pytest

from _index_support import CIFS, need_index_deps, write_cif

need_index_deps()

from nmf4d.errors import InputError  # noqa: E402
from nmf4d.index import load_phase, load_phases  # noqa: E402


def test_name_is_the_file_stem_unless_given(tmp_path):
    p = load_phase(write_cif(tmp_path, "ti_hcp"))
    assert p.name == "ti_hcp"
    assert p.space_group.number == 194
    assert p.point_group.name == "6/mmm"
    assert load_phase(write_cif(tmp_path, "al_fcc"), name="aluminium").name == "aluminium"


def test_comma_separated_string_and_names(tmp_path):
    a, b = write_cif(tmp_path, "al_fcc"), write_cif(tmp_path, "ti_hcp")
    phases = load_phases(f"{a},{b}")
    assert [p.name for p in phases] == ["al_fcc", "ti_hcp"]
    assert [p.name for p in load_phases([a, b], names=["Al", "Ti"])] == ["Al", "Ti"]


def test_unreadable_cif_names_the_file(tmp_path, capsys):
    bad = tmp_path / "broken.cif"
    bad.write_text("this is not ### a CIF file\n")
    with pytest.raises(InputError, match="broken.cif.*not a readable CIF"):
        load_phase(bad)
    assert "SYNTAX" not in capsys.readouterr().out     # the parser's noise is swallowed


def test_cif_without_space_group_names_the_file(tmp_path):
    text = "\n".join(l for l in CIFS["al_fcc"].splitlines() if "symmetry" not in l)
    with pytest.raises(InputError, match="nosg.cif.*no space group"):
        load_phase(write_cif(tmp_path, "al_fcc", text).rename(tmp_path / "nosg.cif"))


def test_missing_file_and_duplicates(tmp_path):
    with pytest.raises(InputError, match="missing.cif.*does not exist"):
        load_phase(tmp_path / "missing.cif")
    a = write_cif(tmp_path, "al_fcc")
    with pytest.raises(InputError, match="used twice"):
        load_phases([a, a])
    with pytest.raises(InputError, match="names: 1 names for 2"):
        load_phases([a, a], names=["x"])
