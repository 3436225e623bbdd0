"""Build of msclr and its extension msclr._C (docs/architecture.md section 5).

* C++ sources (csrc/*.cpp, csrc/cpu/*.cpp) are always built.
* CUDA sources (csrc/cuda/*) are built when torch is a CUDA build and nvcc is found;
  MSCLR_BUILD_CUDA=1 forces them (a failure is then an error), MSCLR_BUILD_CUDA=0 skips them.
  A failed optional CUDA build warns and falls back to a CPU-only extension.
* With no GPU visible and TORCH_CUDA_ARCH_LIST unset, kernels are built for 8.0;9.0
  (A100, H100); set TORCH_CUDA_ARCH_LIST for other cards.
* msclr/_build_info.py records the torch the extension was built against; msclr refuses
  to load the extension under another torch.
"""

import glob
import os
import shutil
import sys
import warnings

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
if not os.environ.get("CUDA_HOME") and os.path.exists("/usr/local/cuda/bin/nvcc"):
    os.environ["CUDA_HOME"] = "/usr/local/cuda"  # must be set before cpp_extension is imported

import torch  # noqa: E402
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension  # noqa: E402


def _rel(paths):
    return sorted(os.path.relpath(p, ROOT) for p in paths)


# One layout per op (docs/architecture.md section 5.1): csrc/<op>.cpp the op's schemas (its checks in
# csrc/<op>.h), csrc/python_module.cpp the Python module, cpu/<op>_kernel.cpp the CPU kernels with
# their registration, io/ the file parsers; cuda/<op>_kernel.cu + <op>_register.cpp the CUDA ones.
CPP_SOURCES = _rel(
    glob.glob(os.path.join(ROOT, "csrc", "*.cpp"))
    + glob.glob(os.path.join(ROOT, "csrc", "cpu", "*.cpp"))
    + glob.glob(os.path.join(ROOT, "csrc", "io", "*.cpp"))
)
CUDA_SOURCES = _rel(
    glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cu")) + glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cpp"))
)
# -fopenmp: at::parallel_for (a header template) runs serially without it under torch's OpenMP
# backend; the extension then shares torch's bundled libgomp.so.1 (same soname, loaded first).
CXX_FLAGS = ["-O3", "-fopenmp"]
LINK_FLAGS = ["-fopenmp"]


def _nvcc() -> str | None:
    if CUDA_HOME and os.path.exists(os.path.join(CUDA_HOME, "bin", "nvcc")):
        return os.path.join(CUDA_HOME, "bin", "nvcc")
    return shutil.which("nvcc")


def _cuda_mode() -> str:
    """'force', 'auto' or 'off'."""
    flag = os.environ.get("MSCLR_BUILD_CUDA", "").strip()
    if flag == "1":
        return "force"
    if flag == "0":
        return "off"
    if flag:
        raise SystemExit(f"MSCLR_BUILD_CUDA must be 0 or 1, got {flag!r}")
    return "auto" if torch.version.cuda and _nvcc() else "off"


def _cpu_extension():
    return CppExtension(
        "msclr._C",
        CPP_SOURCES,
        extra_compile_args={"cxx": CXX_FLAGS},
        extra_link_args=LINK_FLAGS,
    )


def _cuda_extension():
    if not torch.version.cuda:
        raise SystemExit("MSCLR_BUILD_CUDA=1 but this torch is not a CUDA build")
    if not torch.cuda.is_available() and not os.environ.get("TORCH_CUDA_ARCH_LIST"):
        os.environ["TORCH_CUDA_ARCH_LIST"] = "8.0;9.0"
    cuda_version = torch.version.cuda
    defines = ["-DMSCLR_WITH_CUDA", f'-DMSCLR_CUDA_VERSION="{cuda_version}"']
    return CUDAExtension(
        "msclr._C",
        CPP_SOURCES + CUDA_SOURCES,
        extra_compile_args={"cxx": CXX_FLAGS + defines, "nvcc": ["-O3", "-lineinfo"] + defines},
        extra_link_args=LINK_FLAGS,
    )


def _write_build_info(with_cuda: bool) -> None:
    path = os.path.join(ROOT, "msclr", "_build_info.py")
    text = (
        "# Written by setup.py when msclr._C is built; do not edit.\n"
        f"TORCH_VERSION = {torch.__version__!r}\n"
        f"WITH_CUDA = {with_cuda!r}\n"
        f"CUDA_VERSION = {(torch.version.cuda if with_cuda else None)!r}\n"
        f"CUDA_ARCH_LIST = {(os.environ.get('TORCH_CUDA_ARCH_LIST') if with_cuda else None)!r}\n"
    )
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class Build(BuildExtension):
    """BuildExtension that falls back to the CPU-only extension when an optional CUDA build fails."""

    def build_extension(self, ext):
        mode = _cuda_mode()
        if mode == "off":
            print("msclr: building the C++ CPU kernels only", file=sys.stderr)
            super().build_extension(ext)
            _write_build_info(False)
            return
        print(
            f"msclr: building C++ and CUDA kernels (CUDA_HOME={CUDA_HOME}, "
            f"TORCH_CUDA_ARCH_LIST={os.environ.get('TORCH_CUDA_ARCH_LIST')})",
            file=sys.stderr,
        )
        try:
            super().build_extension(ext)
            _write_build_info(True)
        except Exception as e:  # only the optional build may fall back
            if mode == "force":
                raise
            warnings.warn(f"msclr: the optional CUDA build failed ({e}); building CPU kernels only")
            cpu = _cpu_extension()
            ext.sources, ext.extra_compile_args = cpu.sources, cpu.extra_compile_args
            ext.include_dirs, ext.libraries = cpu.include_dirs, cpu.libraries
            ext.library_dirs, ext.define_macros = cpu.library_dirs, cpu.define_macros
            ext.extra_link_args = cpu.extra_link_args
            self.force = True
            super().build_extension(ext)
            _write_build_info(False)


ext = _cuda_extension() if _cuda_mode() != "off" else _cpu_extension()

setup(
    packages=find_packages(include=["msclr", "msclr.*"]) + ["msclr.kernels"],
    package_dir={"msclr.kernels": "kernels"},
    ext_modules=[ext],
    cmdclass={"build_ext": Build.with_options(use_ninja=True)},
)
