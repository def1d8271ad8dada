"""Deterministic synthetic benchmark data, cached as ``.npy`` files in ``benchmarks/.cache/``.

* **SIFT-like float vectors**: a Gaussian mixture in a 32-d latent space (100 overlapping clusters of
  different sizes and shapes), mapped linearly to ``d`` dimensions, plus isotropic noise whose level
  differs per cluster. The parameters are calibrated so that an IVF index with ``nlist = 4·sqrt(N)``
  reaches recall@10 of about 0.4 / 0.7 / 0.9 at nprobe 1 / 4 / 16 (the shape of real SIFT-1M);
  ``python -m benchmarks.datasets --calibrate`` prints the current values.
* **Binary vectors** (256 bits, packed into 32 bytes): sign bits of the same mixture mapped to 256
  dimensions, so near neighbours in Hamming distance exist (random bits have none).

Queries are held out: they come from a different random stream than the base rows. Ground truth
(top-100, nearest first) is exact, computed once with faiss ``IndexFlatL2`` / ``IndexBinaryFlat``.
Base rows are generated in chunks of 100,000, each from its own random stream, so the 1M-row set
starts with the 100k-row set of the same seed (any multiple of 100,000 is a prefix of a larger
one). File names carry the generator version, the seed and the shape; change :data:`FLOAT_TAG` /
:data:`BINARY_TAG` whenever the generator changes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

CACHE_DIR = Path(__file__).resolve().parent / ".cache"
FLOAT_TAG = "siftlike-v1"
BINARY_TAG = "binary-v1"
DEFAULT_SEED = 42
GT_K = 100
CHUNK_ROWS = 100_000
STREAM_MODEL, STREAM_BASE, STREAM_QUERIES = 0, 1, 2
CALIBRATION_NPROBES = (1, 4, 16)
CALIBRATION_TARGETS = {1: 0.4, 4: 0.7, 16: 0.9}


@dataclass(frozen=True, slots=True)
class MixtureSpec:
    """Shape of the SIFT-like mixture (the defaults are the calibrated values)."""

    clusters: int = 100
    latent_dim: int = 32
    center_std: float = 0.7  # spread of the cluster centres, in latent units: clusters overlap
    decay_min: float = 0.0  # each cluster's covariance spectrum falls as rank**-decay,
    decay_max: float = 1.5  # decay drawn uniformly from [decay_min, decay_max]
    scale_sigma: float = 1.0  # log-normal spread of the cluster radii
    noise_std: float = 0.7  # isotropic noise in the output space (median over clusters)
    noise_sigma: float = 0.5  # log-normal spread of the noise level across clusters
    weight_concentration: float = 5.0  # Dirichlet concentration of the cluster weights


@dataclass(frozen=True, slots=True)
class Mixture:
    """One drawn instance of a :class:`MixtureSpec` for an output dimension."""

    centers: np.ndarray  # (clusters, latent) float64
    weights: np.ndarray  # (clusters,) probabilities
    bases: np.ndarray  # (clusters, latent, latent): latent offset = standard normal @ bases[c]
    projection: np.ndarray  # (latent, dim)
    noise: np.ndarray  # (clusters,) isotropic noise std in the output space

    @property
    def dim(self) -> int:
        return int(self.projection.shape[1])

    @property
    def mean(self) -> np.ndarray:
        """The expected output vector (before noise, which has mean zero)."""
        return np.asarray((self.weights @ self.centers) @ self.projection)


def draw_mixture(dim: int, seed: int, spec: MixtureSpec = MixtureSpec()) -> Mixture:
    rng = np.random.default_rng([seed, STREAM_MODEL])
    k, latent = spec.clusters, spec.latent_dim
    centers = rng.normal(0.0, spec.center_std, (k, latent))
    weights = rng.dirichlet(np.full(k, spec.weight_concentration))
    decays = rng.uniform(spec.decay_min, spec.decay_max, k)
    radii = np.exp(rng.normal(0.0, spec.scale_sigma, k))
    bases = np.empty((k, latent, latent))
    ranks = np.arange(1, latent + 1, dtype=np.float64)
    for c in range(k):
        rotation, _ = np.linalg.qr(rng.standard_normal((latent, latent)))
        spectrum = ranks ** -decays[c]
        spectrum /= np.sqrt(np.mean(spectrum**2))  # unit mean variance before the radius
        bases[c] = radii[c] * spectrum[:, None] * rotation
    projection = rng.normal(0.0, 1.0 / np.sqrt(latent), (latent, dim))
    noise = spec.noise_std * np.exp(rng.normal(0.0, spec.noise_sigma, k))
    return Mixture(centers, weights, bases, projection, noise)


def sample(mixture: Mixture, rows: int, seed: int, stream: int) -> np.ndarray:
    """``rows`` float32 vectors of ``mixture``; chunk ``i`` uses the random stream ``[seed, stream, i]``."""
    out = np.empty((rows, mixture.dim), dtype=np.float32)
    k = mixture.weights.shape[0]
    for chunk, start in enumerate(range(0, rows, CHUNK_ROWS)):
        n = min(CHUNK_ROWS, rows - start)
        rng = np.random.default_rng([seed, stream, chunk])
        labels = rng.choice(k, size=n, p=mixture.weights)
        offsets = rng.standard_normal((n, mixture.centers.shape[1]))
        latent = mixture.centers[labels]
        for c in np.unique(labels):
            members = labels == c
            latent[members] += offsets[members] @ mixture.bases[c]
        x = latent @ mixture.projection
        x += rng.standard_normal((n, mixture.dim)) * mixture.noise[labels][:, None]
        out[start : start + n] = x
    return out


def sift_like(rows: int, dim: int = 128, seed: int = DEFAULT_SEED, stream: int = STREAM_BASE) -> np.ndarray:
    """Uncached SIFT-like float32 rows (``stream`` 1 = base rows, 2 = held-out queries)."""
    return sample(draw_mixture(dim, seed), rows, seed, stream)


def binary_codes(rows: int, bits: int = 256, seed: int = DEFAULT_SEED, stream: int = STREAM_BASE) -> np.ndarray:
    """Uncached packed bit vectors ``(rows, bits // 8)`` uint8: sign bits of the mixture at ``bits`` dims."""
    if bits % 8:
        raise ValueError(f"bits must be a multiple of 8, not {bits}")
    mixture = draw_mixture(bits, seed)
    signs = sample(mixture, rows, seed, stream) > mixture.mean.astype(np.float32)
    return np.packbits(signs, axis=1)


def exact_l2(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` (squared L2 distances, row numbers), nearest first."""
    index = faiss.IndexFlatL2(int(base.shape[1]))
    index.add(np.ascontiguousarray(base, dtype=np.float32))
    dist, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return np.asarray(dist, dtype=np.float32), np.asarray(ids, dtype=np.int64)


def exact_hamming(base: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` (Hamming distances, row numbers) over packed codes, nearest first."""
    index = faiss.IndexBinaryFlat(int(base.shape[1]) * 8)
    index.add(np.ascontiguousarray(base, dtype=np.uint8))
    dist, ids = index.search(np.ascontiguousarray(queries, dtype=np.uint8), k)
    return np.asarray(dist, dtype=np.float32), np.asarray(ids, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Dataset:
    name: str
    metric: str  # "L2" or "HAMMING"
    base: np.ndarray
    queries: np.ndarray
    gt_ids: np.ndarray  # (nq, GT_K) int64 row numbers of ``base``, nearest first
    gt_distances: np.ndarray  # (nq, GT_K) float32

    @property
    def rows(self) -> int:
        return int(self.base.shape[0])

    @property
    def dim(self) -> int:
        """Vector dimension (in bits for binary data)."""
        width = int(self.base.shape[1])
        return width * 8 if self.base.dtype == np.uint8 else width


def cached(path: Path, make: Callable[[], np.ndarray]) -> np.ndarray:
    """Load ``path`` if it exists; otherwise compute, write atomically, and return the array."""
    if path.exists():
        return np.load(path)
    arr = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, arr)
    os.replace(tmp, path)
    return arr


def _ground_truth(prefix: str, rows: int, base: np.ndarray, queries: np.ndarray, k: int, cache_dir: Path,
                  search: Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray]],
                  ) -> tuple[np.ndarray, np.ndarray]:
    ids_path = cache_dir / f"{prefix}_gt-ids_base{rows}_{queries.shape[0]}x{k}.npy"
    dist_path = cache_dir / f"{prefix}_gt-dist_base{rows}_{queries.shape[0]}x{k}.npy"
    if ids_path.exists() and dist_path.exists():
        return np.load(dist_path), np.load(ids_path)
    dist, ids = search(base, queries, k)
    cached(dist_path, lambda: dist)
    cached(ids_path, lambda: ids)
    return dist, ids


def load_sift_like(rows: int = 100_000, dim: int = 128, queries: int = 1_000, seed: int = DEFAULT_SEED,
                   k: int = GT_K, cache_dir: Path = CACHE_DIR) -> Dataset:
    """SIFT-like base rows, held-out queries and exact L2 ground truth, from the cache when present."""
    prefix = f"{FLOAT_TAG}_seed{seed}"
    base = cached(cache_dir / f"{prefix}_base_{rows}x{dim}.npy", lambda: sift_like(rows, dim, seed, STREAM_BASE))
    xq = cached(cache_dir / f"{prefix}_queries_{queries}x{dim}.npy",
                lambda: sift_like(queries, dim, seed, STREAM_QUERIES))
    dist, ids = _ground_truth(f"{prefix}_d{dim}", rows, base, xq, min(k, rows), cache_dir, exact_l2)
    return Dataset(f"{FLOAT_TAG} seed {seed}", "L2", base, xq, ids, dist)


def load_binary(rows: int = 100_000, bits: int = 256, queries: int = 1_000, seed: int = DEFAULT_SEED,
                k: int = GT_K, cache_dir: Path = CACHE_DIR) -> Dataset:
    """Packed binary base rows, held-out queries and exact Hamming ground truth, cached."""
    prefix = f"{BINARY_TAG}_seed{seed}"
    base = cached(cache_dir / f"{prefix}_base_{rows}x{bits}bit.npy",
                  lambda: binary_codes(rows, bits, seed, STREAM_BASE))
    xq = cached(cache_dir / f"{prefix}_queries_{queries}x{bits}bit.npy",
                lambda: binary_codes(queries, bits, seed, STREAM_QUERIES))
    dist, ids = _ground_truth(f"{prefix}_b{bits}", rows, base, xq, min(k, rows), cache_dir, exact_hamming)
    return Dataset(f"{BINARY_TAG} seed {seed}", "HAMMING", base, xq, ids, dist)


def recall_at(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean share of each query's true top-``k`` present among its first ``k`` results."""
    hits = (found[:, :k, None] == truth[:, None, :k]).any(axis=1)
    return float(hits.mean())


def ivf_recalls(ds: Dataset, nprobes: Sequence[int] = CALIBRATION_NPROBES, nlist: int | None = None,
                k: int = 10) -> tuple[int, float, dict[int, float]]:
    """Train ``IVF{nlist},Flat`` (default ``nlist = 4·sqrt(N)``) on the base rows; recall@k per nprobe.

    Returns ``(nlist, seconds to train and add, {nprobe: recall})``.
    """
    nlist = nlist or round(4 * np.sqrt(ds.rows))
    quantizer = faiss.IndexFlatL2(ds.dim)
    index = faiss.IndexIVFFlat(quantizer, ds.dim, nlist)
    started = time.perf_counter()
    index.train(ds.base)
    index.add(ds.base)
    built = time.perf_counter() - started
    out: dict[int, float] = {}
    for nprobe in nprobes:
        index.nprobe = nprobe
        _, ids = index.search(ds.queries, k)
        out[nprobe] = recall_at(ids, ds.gt_ids, k)
    return nlist, built, out


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.datasets", description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=100_000, help="base rows (default 100000)")
    p.add_argument("--dim", type=int, default=128, help="float dimension (default 128)")
    p.add_argument("--queries", type=int, default=1_000, help="held-out queries (default 1000)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--binary", action="store_true", help="also build the 256-bit binary set")
    p.add_argument("--calibrate", action="store_true",
                   help="print IVF recall@10 at nprobe 1/4/16 with nlist = 4*sqrt(rows), faiss in-process")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="faiss OpenMP threads")
    p.add_argument("--cache-dir", type=Path, default=CACHE_DIR)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    faiss.omp_set_num_threads(args.threads)
    started = time.perf_counter()
    ds = load_sift_like(args.rows, args.dim, args.queries, args.seed, cache_dir=args.cache_dir)
    print(f"{ds.name}: base {ds.base.shape} {ds.base.dtype}, queries {ds.queries.shape}, "
          f"ground truth {ds.gt_ids.shape} ({time.perf_counter() - started:.1f}s, cache {args.cache_dir})")
    if args.binary:
        started = time.perf_counter()
        bds = load_binary(args.rows, 256, args.queries, args.seed, cache_dir=args.cache_dir)
        ones = float(np.unpackbits(bds.base[:10_000], axis=1).mean())
        print(f"{bds.name}: base {bds.base.shape} {bds.base.dtype} ({bds.dim} bits, {ones:.1%} ones), "
              f"queries {bds.queries.shape}, ground truth {bds.gt_ids.shape} "
              f"(Hamming top-10 median {np.median(bds.gt_distances[:, :10]):.0f} bits, "
              f"{time.perf_counter() - started:.1f}s)")
    if args.calibrate:
        nlist, built, recalls = ivf_recalls(ds)
        print(f"IVF{nlist},Flat (nlist = 4*sqrt({ds.rows}), trained and filled in {built:.1f}s, "
              f"{args.threads} threads), recall@10 over {ds.queries.shape[0]} queries:")
        for nprobe, recall in recalls.items():
            print(f"  nprobe {nprobe:>3}: {recall:.3f}   (target ~{CALIBRATION_TARGETS.get(nprobe, float('nan'))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
