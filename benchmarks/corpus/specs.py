"""The corpus: every case's generator, options and seed, in two halves.

Each configuration is listed twice, with a *design* seed (for tuning nmf4d's decision)
and a *holdout* seed (for reporting only: never analyse it while designing), so the two
halves share configurations but no random draw. A few configurations exist only in the
held-out half. Seeds: design 1000 + i, holdout 5000 + i (arbitrary, fixed here).

A third split, *fresh* (seeds 9000 + i, the held-out half's configurations), is a second
held-out draw for when the held-out half has been reported several times: built and
reported once, after the design work it reports on is finished. A fourth, *fresh2*
(seeds 13000 + i, the same configurations), was added when the fresh split had been
reported three times (the held-out count-splitting test was reported on it). A fifth,
*fresh3* (seeds 17000 + i, the same configurations), was added when fresh2 had been
reported eight times: its first run reports the rules as they stood then.

``k_true`` given here is what the configuration is built to have (grains + film-only
or diffuse region + vacuum); pyxem's crystals can be hidden and its tilings can lose
grains, so for pyxem cases the built truth is authoritative (``meta.json``).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Spec:
    """One corpus case.

    Attributes
    ----------
    name : str
        Configuration name (shared by its design and holdout cases).
    generator : {"diffsims", "pyxem", "synthetic", "real"}
    split : {"design", "holdout", "fresh", "fresh2", "fresh3"}
    seed : int
    params : dict
        Options of the generator's ``make_case`` (see its ``DEFAULTS``).
    k_true : int or None
        Intended number of distinct patterns (None: decided by the draw).
    varies : str
        What the configuration stresses (for the README table).
    """

    name: str
    generator: str
    split: str
    seed: int
    params: dict = field(hash=False)
    k_true: int | None
    varies: str

    def as_dict(self) -> dict:
        """The ``spec`` passed to ``make_case``: params plus name and split."""
        return dict(self.params, name=self.name, split=self.split)


CORPUS: list[Spec] = []
_index = [0]


def _pair(name, generator, k_true, varies, holdout_only=False, **params):
    i = _index[0]
    _index[0] += 1
    if not holdout_only:
        CORPUS.append(Spec(name, generator, "design", 1000 + i, params, k_true, varies))
    CORPUS.append(Spec(name, generator, "holdout", 5000 + i, params, k_true, varies))
    CORPUS.append(Spec(name, generator, "fresh", 9000 + i, params, k_true, varies))
    CORPUS.append(Spec(name, generator, "fresh2", 13000 + i, params, k_true, varies))
    CORPUS.append(Spec(name, generator, "fresh3", 17000 + i, params, k_true, varies))


CCD = dict(kind="integrating", gain=4.0, dark_offset=50.0, read_noise=6.0)
CCD_LOW = dict(kind="integrating", gain=1.5, dark_offset=20.0, read_noise=2.5)
ALL5 = ("al_fcc", "fe_bcc", "fe_fcc", "si_diamond", "ti_hcp")

# --- 1. diffsims kinematic simulations of CIF phases -------------------------------
D = "diffsims"
_pair("ds-al-clean", D, 4, "zone axes, no background, high dose",
      phases=("al_fcc",), n_grains=4, scan=(40, 40), pattern=(96, 96), scale=0.026,
      orientation="zone", zone_tilt_deg=1.0, dose=5000)
_pair("ds-al-film-vac", D, 7, "carbon film everywhere, film-only and vacuum regions",
      phases=("al_fcc",), n_grains=5, scan=(48, 48), pattern=(96, 96), scale=0.026,
      film_strength=0.2, film_fraction=0.12, vacuum_fraction=0.1, dose=2000)
_pair("ds-fe-two-phase-pED", D, 6, "bcc + fcc iron, precession 1 deg, overlap bands",
      phases=("fe_bcc", "fe_fcc"), n_grains=6, scan=(48, 48), pattern=(96, 96), scale=0.026,
      orientation="zone", precession_deg=1.0, band_width=5, dose=3000)
_pair("ds-si-lowdose", D, 6, "200 counts per pattern, random orientations, vacuum",
      phases=("si_diamond",), n_grains=5, scan=(48, 48), pattern=(64, 64), scale=0.035,
      vacuum_fraction=0.12, dose=200)
_pair("ds-ti-gradient", D, 5, "hcp, 3 deg orientation gradients, film under grains",
      phases=("ti_hcp",), n_grains=5, scan=(40, 40), pattern=(128, 128), scale=0.02,
      orientation="zone", gradient_deg=3.0, film_strength=0.15, dose=5000)
_pair("ds-mixed-k14", D, 14, "four phases, 12 grains, film + vacuum",
      phases=("al_fcc", "fe_bcc", "si_diamond", "ti_hcp"), n_grains=12, scan=(64, 64),
      pattern=(64, 64), scale=0.035, film_strength=0.15, film_fraction=0.08,
      vacuum_fraction=0.06, dose=2000)
_pair("ds-ccd-dark", D, 6, "integrating detector: dark offset 50, gain 4, read noise 6",
      phases=("al_fcc",), n_grains=6, scan=(40, 40), pattern=(96, 96), scale=0.026,
      orientation="zone", film_strength=0.25, detector=CCD, dose=1000)
_pair("ds-descan", D, 6, "descan 4 px, dim reflections (beam 5x brighter than spots)",
      phases=("fe_fcc",), n_grains=5, scan=(48, 48), pattern=(96, 96), scale=0.026,
      orientation="zone", spot_fraction=0.15, vacuum_fraction=0.1, descan_px=4.0,
      dose=5000)
_pair("ds-bright-beam-pED", D, 7, "direct beam ~10x all spots, precession 0.7 deg, 20k counts",
      phases=("al_fcc",), n_grains=7, scan=(48, 48), pattern=(96, 96), scale=0.026,
      precession_deg=0.7, spot_fraction=0.08, dose=20000)
_pair("ds-wide-bands", D, 6, "8 px inclined-boundary bands (linear), two phases, film",
      phases=("si_diamond", "al_fcc"), n_grains=6, scan=(48, 48), pattern=(96, 96),
      scale=0.026, band_width=8, band_profile="linear", film_strength=0.1, dose=2000)
_pair("ds-large-scan-k18", D, 18, "128x128 scan, 16 grains, film + vacuum, dose 1000",
      phases=("al_fcc", "fe_bcc"), n_grains=16, scan=(128, 128), pattern=(64, 64),
      scale=0.035, film_strength=0.15, film_fraction=0.06, vacuum_fraction=0.05, dose=1000)
_pair("ds-256px-k3", D, 3, "256 px patterns, thick (thickness +-50 %), zone axes",
      phases=("fe_bcc",), n_grains=3, scan=(32, 32), pattern=(256, 256), scale=0.01,
      orientation="zone", thickness_variation=0.5, dose=10000)
_pair("ds-k20", D, 20, "all five phases, 18 grains near zone axes, film + vacuum",
      phases=ALL5, n_grains=18, scan=(96, 96), pattern=(64, 64), scale=0.035,
      orientation="zone", film_strength=0.12, film_fraction=0.05, vacuum_fraction=0.04,
      dose=3000)
_pair("ds-ho-everything", D, 10, "gradient + descan + CCD + precession + film, dose 500",
      holdout_only=True, phases=("al_fcc", "ti_hcp"), n_grains=8, scan=(64, 64),
      pattern=(96, 96), scale=0.026, precession_deg=0.5, gradient_deg=2.0, descan_px=3.0,
      film_strength=0.2, film_fraction=0.08, vacuum_fraction=0.06, detector=CCD_LOW,
      band_width=4, dose=500)

# --- 2. pyxem dummy-data simulators ----------------------------------------------
P = "pyxem"
_pair("px-nano-fe-vac", P, None, "overlapping fcc nanocrystals, vacuum with beam",
      mode="nanocrystals", phase="fe_fcc", n_grains=6, scan=64, pattern=64,
      crystal_size=9, vacuum_beam=True, dose=3000)
_pair("px-nano-al-empty", P, None, "beam scaled to 5 %, empty (no-beam) background",
      mode="nanocrystals", phase="al_fcc", n_grains=5, scan=48, pattern=96, crystal_size=8,
      beam_scale=0.05, noise_level=0.0, dose=3000)
_pair("px-nano-lowdose", P, None, "8 crystals at 300 counts, uniform noise 0.1",
      mode="nanocrystals", phase="fe_fcc", n_grains=8, scan=56, pattern=64, crystal_size=7,
      vacuum_beam=True, dose=300)
_pair("px-nano-si-pED", P, None, "silicon, precession 1 deg, 128 px",
      mode="nanocrystals", phase="si_diamond", n_grains=6, scan=48, pattern=128,
      crystal_size=8, precession_deg=1.0, vacuum_beam=True, noise_level=0.0, dose=5000)
_pair("px-nano-bcc-k13", P, None, "12 bcc crystals on a 96x96 scan",
      mode="nanocrystals", phase="fe_bcc", n_grains=12, scan=96, pattern=64,
      crystal_size=9, vacuum_beam=True, noise_level=0.0, dose=2000)
_pair("px-nano-gain", P, None, "gain 4 and uniform noise 2 (float data)",
      mode="nanocrystals", phase="fe_fcc", n_grains=4, scan=48, pattern=64, crystal_size=9,
      electron_gain=4.0, noise_level=2.0, vacuum_beam=True, dose=1000)
_pair("px-nano-ti", P, None, "hcp titanium crystals, beam scaled to 20 %",
      mode="nanocrystals", phase="ti_hcp", n_grains=5, scan=48, pattern=64, crystal_size=8,
      beam_scale=0.2, vacuum_beam=True, noise_level=0.0, dose=2000)
_pair("px-si-grains", P, None, "pyxem's silicon tiling (sigma-5 spots), dose 3000",
      mode="si_grains", n_grains=6, scan=48, pattern=128, dose=3000)
_pair("px-si-grains-lowdose", P, None, "silicon tiling, 10 grains, 300 counts",
      mode="si_grains", n_grains=10, scan=56, pattern=96, dose=300)
_pair("px-fe-multiphase", P, None, "pyxem's bcc + fcc tiling, random orientations",
      mode="fe_multiphase", n_grains=6, scan=48, pattern=96, dose=2000)
_pair("px-fe-multiphase-ccd", P, None, "bcc + fcc tiling, 12 grains, CCD detector",
      mode="fe_multiphase", n_grains=12, scan=40, pattern=128, detector=CCD, dose=5000)
_pair("px-ho-nano-mixed", P, None, "10 overlapping al crystals, low beam, dose 800",
      holdout_only=True, mode="nanocrystals", phase="al_fcc", n_grains=10, scan=80,
      pattern=64, crystal_size=9, beam_scale=0.3, vacuum_beam=True, dose=800)

# --- 3. nmf4d.synthetic with varied parameters ----------------------------------
S = "synthetic"
_pair("syn-k3", S, 3, "3 grains, no vacuum", scan=(40, 40), n_grains=3, vacuum=False, dose=2000)
_pair("syn-k6-dose200", S, 6, "dose 200", scan=(48, 48), n_grains=5, dose=200)
_pair("syn-k8-bright-beam", S, 8, "60 % of every pattern moved into the beam",
      scan=(56, 56), n_grains=7, extra_beam=0.6, dose=2000)
_pair("syn-k10-descan", S, 10, "descan 3 px", scan=(64, 64), n_grains=9, descan_px=3.0,
      dose=3000)
_pair("syn-k12-ccd", S, 12, "CCD: dark offset 50, gain 4, read noise 6", scan=(64, 64),
      n_grains=12, vacuum=False, detector=CCD, dose=1000)
_pair("syn-k15", S, 15, "14 grains + vacuum", scan=(80, 80), n_grains=14, dose=2000)
_pair("syn-k20", S, 20, "19 grains + vacuum", scan=(96, 96), n_grains=19, dose=3000)
_pair("syn-k5-128px", S, 5, "128 px patterns, wide spots, 20k counts", scan=(48, 48),
      pattern=(128, 128), n_grains=4, spot_sigma=1.5, dose=20000)
_pair("syn-k7-wide-bands", S, 7, "8 px bands", scan=(48, 48), n_grains=7, vacuum=False,
      overlap_width=8.0, dose=1000)
_pair("syn-k4-256px", S, 4, "256 px patterns, sharp boundaries", scan=(32, 32),
      pattern=(256, 256), n_grains=4, vacuum=False, overlap_width=0.0, dose=5000)
_pair("syn-k9-shifted", S, 9, "bright beam + descan 2 px + CCD, dose 500", scan=(56, 56),
      n_grains=8, extra_beam=0.4, descan_px=2.0, detector=CCD_LOW, dose=500)
_pair("syn-k11-128scan", S, 11, "128x128 scan", scan=(128, 128), n_grains=10, dose=1000)
_pair("syn-ho-k14-thick", S, 14, "thickness +-60 %, 13 grains, bright beam",
      holdout_only=True, scan=(72, 72), n_grains=13, thickness_variation=0.6,
      extra_beam=0.3, dose=1500)

# --- 4. scans tiled from real detector patterns ------------------------------------
R = "real"
_pair("real-astar-k4", R, 4, "ASTAR precession pattern turned, 20k counts", source="astar",
      n_grains=4, scan=(40, 40), pattern=(96, 96), dose=20000)
_pair("real-astar-k6-vac", R, 6, "full 144 px ASTAR patterns, vacuum", source="astar",
      n_grains=5, scan=(48, 48), pattern=(144, 144), vacuum_fraction=0.12, dose=5000)
_pair("real-astar-lowdose", R, 7, "1000 counts, 64 px, diffuse region", source="astar",
      n_grains=6, scan=(48, 48), pattern=(64, 64), film_fraction=0.12, dose=1000)
_pair("real-astar-gradient", R, 6, "4 deg in-plane gradients", source="astar", n_grains=6,
      scan=(48, 48), pattern=(96, 96), gradient_deg=4.0, dose=10000)
_pair("real-astar-descan-ccd", R, 6, "descan 3 px + CCD", source="astar", n_grains=5,
      scan=(48, 48), pattern=(96, 96), vacuum_fraction=0.1, descan_px=3.0, detector=CCD,
      dose=3000)
_pair("real-astar-k14", R, 14, "12 grains + diffuse + vacuum", source="astar",
      n_grains=12, scan=(80, 80), pattern=(64, 64), film_fraction=0.06,
      vacuum_fraction=0.05, dose=5000)
_pair("real-nbed-k5", R, 5, "steel NBED pattern turned", source="nbed", n_grains=5,
      scan=(48, 48), pattern=(128, 128), dose=5000)
_pair("real-nbed-256px", R, 4, "256 px NBED, vacuum, 20k counts", source="nbed",
      n_grains=3, scan=(32, 32), pattern=(256, 256), vacuum_fraction=0.15, dose=20000)
_pair("real-nbed-wide-bands", R, 6, "8 px linear bands", source="nbed", n_grains=6,
      scan=(48, 48), pattern=(96, 96), band_width=8, band_profile="linear", dose=3000)
_pair("real-nbed-lowdose-k10", R, 10, "500 counts, 9 grains + diffuse, central field",
      source="nbed", n_grains=9, scan=(64, 64), pattern=(64, 64), zoom=0.75,
      film_fraction=0.08, dose=500)
_pair("real-astar-k20", R, 20, "18 grains + diffuse + vacuum", source="astar",
      n_grains=18, scan=(96, 96), pattern=(64, 64), film_fraction=0.05,
      vacuum_fraction=0.04, dose=5000)
_pair("real-astar-128scan", R, 9, "128x128 scan, 8 grains + vacuum", source="astar",
      n_grains=8, scan=(128, 128), pattern=(64, 64), vacuum_fraction=0.08, dose=2000)
_pair("real-ho-nbed-mixed", R, 8, "gradient + descan + CCD + bands, dose 1500",
      holdout_only=True, source="nbed", n_grains=7, scan=(64, 64), pattern=(96, 96), zoom=0.75,
      gradient_deg=3.0, descan_px=2.5, detector=CCD_LOW, band_width=4,
      vacuum_fraction=0.08, dose=1500)

GENERATORS = ("diffsims", "pyxem", "synthetic", "real")


def cases(half: str | None = None, only: str | None = None) -> list[Spec]:
    """Specs of one half (or both).

    ``only``: comma-separated names; each selects the case of that exact name, or, when
    no name matches exactly, every case whose name contains it (a generator name such
    as ``pyxem`` selects that generator's cases).
    """
    out = [c for c in CORPUS if half in (None, c.split)]
    if only:
        keep = []
        for word in only.split(","):
            exact = [c for c in out if c.name == word]
            keep += exact or [c for c in out if word in c.name or word == c.generator]
        out = [c for c in out if c in keep]
    return out
