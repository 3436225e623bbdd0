"""Data pipeline speed: NTU .skeleton parsing (C++ vs the Python reference), `prepare ntu`
end to end on 1,000 generated NTU-format files, synthetic store generation, Dataset reads.

    pytest bench/bench_data.py --benchmark-only

Providers: "reference" = the pure-Python parser / single-threaded path, "cpu" = the C++
parser of msclr._C (threads where noted). Files/s are in the notes column.
"""

from __future__ import annotations

import os
import shutil

import pytest
from conftest import ROUNDS
from ntu_files import write_synthetic_skeleton_files  # tests/ntu_files.py (bench/conftest.py puts tests/ on the path)

from msclr import skeletons
from msclr.data import MultiSkeletonDataset, ntu
from msclr.data.synthetic import make_synthetic_store

NUM_FILES = 1000


@pytest.fixture(scope="module")
def ntu_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ntu_bench")
    # NTU-like sequences: up to 100 frames (NTU averages ~70 after denoising), 1-2 bodies
    return write_synthetic_skeleton_files(d, NUM_FILES, seed=0, T=100)


def _providers():
    return ["reference"] + (["cpu"] if ntu.cpp_parser_available() else [])


@pytest.mark.parametrize("provider", _providers())
def test_parse_files(benchmark, ntu_files, provider):
    files = ntu_files[:100] if provider == "reference" else ntu_files
    parser = "python" if provider == "reference" else "cpp"
    benchmark.group = "NTU .skeleton parse, per file (single thread)"
    benchmark.extra_info["provider"] = provider

    def run():
        for p in files:
            ntu.parse_skeleton_file(p, parser=parser)

    benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    per_file = benchmark.stats.stats.median / len(files)
    benchmark.extra_info["note"] = f"{1 / per_file:.0f} files/s ({len(files)} files per round)"


@pytest.mark.parametrize("provider", _providers())
def test_prepare_ntu_end_to_end(benchmark, ntu_files, tmp_path, provider):
    raw = ntu_files[0].parent
    workers = os.cpu_count() or 1
    benchmark.group = f"prepare ntu end to end, {NUM_FILES} files"
    benchmark.extra_info["provider"] = provider

    def run():
        out = tmp_path / "store"
        shutil.rmtree(out, ignore_errors=True)
        _, report = ntu.prepare(
            raw, out, parser="python" if provider == "reference" else "cpp", workers=workers, progress=False
        )
        return report

    report = benchmark.pedantic(run, rounds=1, iterations=1)
    t = benchmark.stats.stats.median
    benchmark.extra_info["note"] = f"{report.samples} samples, {report.samples / t:.0f} files/s, {workers} threads"


def test_synthetic_store_1000x64(benchmark, tmp_path):
    benchmark.group = "synthetic store, 1000 samples x 64 frames x 8 conventions"
    benchmark.extra_info["provider"] = "reference"
    benchmark.pedantic(lambda: make_synthetic_store(tmp_path / "syn", num_samples=1000, T=64), rounds=2, iterations=1)


def test_dataset_items(benchmark, tmp_path):
    store = make_synthetic_store(tmp_path / "syn", num_samples=256, T=64)
    table = skeletons.LayoutTable([store.convention(n) for n in store.conventions])
    ds = MultiSkeletonDataset(store, store.conventions, table, T=50, train=True)
    benchmark.group = "Dataset item (8 conventions, T=50, train crop)"
    benchmark.extra_info["provider"] = "reference"

    def run():
        for i in range(256):
            ds[i]

    benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    benchmark.extra_info["note"] = f"{256 / benchmark.stats.stats.median:.0f} items/s"
