"""nmf4d.index.matching: the sparse circulant product equals a direct loop."""
import numpy as np

from _index_support import bank, need_index_deps

need_index_deps()

from nmf4d.index.matching import circulant, score_phase, spot_matrix  # noqa: E402


def test_scores_equal_direct_sum_over_spots():
    b = bank(("ti_hcp",), 5.0)
    pt = b.phases[0]
    rng = np.random.default_rng(0)
    n_r, n_a = 40, b.n_angles
    polar = rng.random((n_r, n_a))
    sm = spot_matrix(pt, scale=0.035, n_radii=n_r, n_angles=n_a, gamma=0.5)
    got = score_phase(circulant(polar), sm, sigma=1.0, keep_full=True)
    for t in range(0, pt.size, max(1, pt.size // 15)):
        xy, inten = pt.spots(t)
        r = np.hypot(xy[:, 0], xy[:, 1]) / 0.035
        th = np.arctan2(xy[:, 1], xy[:, 0])
        ok = r < n_r - 1
        w = inten[ok] ** 0.5
        w = w / np.linalg.norm(w)
        r0 = np.rint(r[ok]).astype(int)
        tb = np.rint(th[ok] / (2 * np.pi) * n_a).astype(int) % n_a
        for psi in (0, 7, n_a - 1):
            direct = np.sum(w * polar[r0, (tb + psi) % n_a])
            assert np.isclose(got.full[t, psi], np.sqrt(4 * np.pi) * direct, rtol=1e-5)
        assert np.isclose(got.best[t], got.full[t].max())
