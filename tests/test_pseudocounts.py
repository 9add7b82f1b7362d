"""nmf4d.pseudocounts: float data read back as counts when they sit on a count lattice."""
import numpy as np
import pytest

from nmf4d.pseudocounts import QUANTUM_COHERENCE, as_counts, coherence, count_quantum


def _counts(rng, shape=(96, 32, 32), mean=1.5):
    lam = rng.gamma(0.5, mean / 0.5, size=shape)        # sparse and bright pixels alike
    return rng.poisson(lam)


@pytest.mark.parametrize("gain, noise, guess", [(1.0, 0.1, 1.3), (4.0, 2.0, 4.7),
                                                (2.5, 0.5, 2.0), (12.0, 1.0, 15.0)])
def test_the_quantum_of_gain_times_counts_plus_uniform_noise(gain, noise, guess):
    # pyxem's make_4d_stem: gain * Poisson + Uniform[0, noise); the first guess is off by
    # up to 25 % (the photon-transfer gain of scans with structure is biased high)
    rng = np.random.default_rng(0)
    n = _counts(rng)
    x = gain * n + rng.uniform(0, noise, n.shape)
    q, off, coh = count_quantum(x, guess)
    assert q == pytest.approx(gain, rel=2e-3)
    assert off == pytest.approx(noise / 2, abs=0.05 * gain)
    assert coh >= QUANTUM_COHERENCE
    # read back, the counts are exact
    assert np.array_equal(as_counts(x[:, None], q, off)[:, 0], n)


def test_a_low_guess_sparse_counts_and_bright_pixels():
    rng = np.random.default_rng(4)
    # a guess far below the gain: a sub-multiple of the quantum is as coherent
    n = _counts(rng)
    x = 4.0 * n + rng.uniform(0, 0.2, n.shape)
    assert count_quantum(x, 1.8)[0] == pytest.approx(4.0, rel=2e-3)
    # sparse: nearly every non-zero value is one count, as coherent at 2 as at 1
    n = rng.poisson(0.02, size=(96, 32, 32))
    x = n + rng.uniform(0, 0.1, n.shape)
    q, off, _ = count_quantum(x, 1.1)
    assert q == pytest.approx(1.0, rel=1e-2)          # hardly any 2s: a less precise line
    assert np.array_equal(as_counts(x[:, None], q, off)[:, 0], n)
    # a direct beam of hundreds of counts is read back exactly too; one of thousands to
    # within a count or two (the quantum is known to about 1e-4)
    for beam, tol in ((300, 0), (3000, 2)):
        n = _counts(rng)
        n[:, 14:18, 14:18] += rng.poisson(beam, size=(96, 4, 4))
        x = 4.0 * n + rng.uniform(0, 2.0, n.shape)
        q, off, _ = count_quantum(x, 4.7)
        back = as_counts(x[:, None], q, off)[:, 0]
        assert np.abs(back - n).max() <= tol
        assert np.array_equal(back[:, :14], n[:, :14])      # away from the beam: exact


def test_gaussian_noise_on_the_lattice_gives_the_predicted_coherence():
    # R = exp(-2 pi^2 sigma^2 / q^2): the meaning of the threshold
    rng = np.random.default_rng(1)
    n = _counts(rng)
    for sigma in (0.1, 0.19):
        x = 3.0 * n + rng.normal(0, sigma * 3.0, n.shape)
        v = x[x > 1.5]
        assert coherence(v, 3.0) == pytest.approx(np.exp(-2 * np.pi ** 2 * sigma ** 2),
                                                  abs=0.01)
    # the threshold 0.5 sits at sigma = 0.19 quanta
    assert np.sqrt(-np.log(QUANTUM_COHERENCE) / (2 * np.pi ** 2)) == pytest.approx(0.187,
                                                                                  abs=1e-3)


def test_read_noise_of_an_integrating_camera_is_not_counts():
    # gain 4 ADU per electron, read noise 6 ADU (the corpus's CCD), offset removed
    rng = np.random.default_rng(2)
    n = _counts(rng)
    x = 4.0 * n + rng.normal(0, 6.0, n.shape)
    q, off, coh = count_quantum(x, 4.5)
    assert coh < QUANTUM_COHERENCE
    # read noise measured elsewhere caps the coherence of values that do sit on a lattice
    x = 4.0 * n + rng.uniform(0, 0.2, n.shape)
    assert count_quantum(x, 4.5)[2] > 0.9
    capped = count_quantum(x, 4.5, read_noise=0.3 * 4.0)[2]
    assert capped == pytest.approx(np.exp(-2 * np.pi ** 2 * 0.3 ** 2), rel=1e-3)


def test_no_values_above_the_zero_band_and_a_bad_guess():
    assert count_quantum(np.full((4, 8, 8), 0.05), 1.0)[2] == 0.0
    assert count_quantum(np.ones((4, 8, 8)), 0.0)[2] == 0.0
    assert count_quantum(np.ones((4, 8, 8)), float("nan"))[2] == 0.0


def test_as_counts_is_lazy_for_dask_and_clips_at_zero():
    da = pytest.importorskip("dask.array")
    x = np.array([-0.4, 0.2, 3.9, 8.1, 12.3], np.float32).reshape(1, 1, 1, 5)
    out = as_counts(da.from_array(x), 4.0, 0.0)
    assert isinstance(out, da.Array)
    assert out.compute().ravel().tolist() == [0, 0, 1, 2, 3]


def test_the_heldout_test_runs_on_float_counts_and_skips_camera_data():
    from nmf4d.config import AnalysisConfig
    from nmf4d.pipeline import analyse
    from nmf4d.synthetic import make_polycrystal

    data, truth = make_polycrystal((20, 20), (32, 32), n_grains=3, vacuum=True, seed=1)
    rng = np.random.default_rng(3)
    counts = np.asarray(data).astype(np.int64)
    cfg = AnalysisConfig.from_flat(k_range=(2, 8), seed=0)
    ref = analyse(counts, cfg)
    scaled = (4.0 * counts + rng.uniform(0, 1.0, counts.shape)).astype(np.float32)
    a = analyse(scaled, cfg)
    h = a.decision.heldout
    assert h.applied and h.counts["quantum"] == pytest.approx(4.0, rel=2e-3)
    assert "read as counts of 4" in a.decision.explanation
    assert a.k == ref.k == len(np.unique(truth.labels))
    # read back, they are the same counts: the same test on the same clusters
    from nmf4d.heldout import counts_source, heldout_test
    from nmf4d.pipeline import heldout_counts

    back, note = heldout_counts(scaled, cfg.preprocessing, {"dark": {"mode": "off"}})
    assert np.array_equal(back, counts) and note["coherence"] >= QUANTUM_COHERENCE
    lab = np.asarray(truth.labels).ravel()
    z = [heldout_test(counts_source(c), lab, (20, 20), (32, 32)).z for c in (back, counts)]
    assert np.array_equal(z[0], z[1])
    camera = (4.0 * counts + 100.0 + rng.normal(0, 6.0, counts.shape)).astype(np.float32)
    c = analyse(camera, AnalysisConfig.from_flat(k_range=(2, 8), seed=0))   # dark auto
    assert c.preprocessing["dark"]["offset"] == pytest.approx(100.0, abs=3.0)
    assert not c.decision.heldout.applied
    assert "not counts" in c.decision.heldout.reason and "coherence" in c.decision.heldout.reason
    # the same camera writing integers (ADU): all values sit on the 1-ADU lattice, which
    # says nothing of counts; with the offset removed they are left alone, as before
    adu = np.rint(camera).astype(np.uint16)
    back, note = heldout_counts(adu, cfg.preprocessing, {"dark": {"mode": "auto",
                                                                   "offset": 100.0}})
    assert back is None and note == {}
    d = analyse(adu, AnalysisConfig.from_flat(k_range=(2, 8), seed=0))
    assert not d.decision.heldout.applied and "not counts" in d.decision.heldout.reason
    # integers no step changed: the test reads the fitted data (None)
    assert heldout_counts(counts, cfg.preprocessing, {"dark": {"mode": "off"}}) == (None, {})
