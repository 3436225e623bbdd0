// The Python module msclr._C. Importing it runs the static TORCH_LIBRARY
// registrations of every source linked in; the functions below report what was built.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <torch/headeronly/version.h>

#include <string>
#include <utility>
#include <vector>

#include "io/ntu_skeleton.h"

#ifndef TORCH_EXTENSION_NAME
#define TORCH_EXTENSION_NAME _C
#endif

namespace {

namespace py = pybind11;

// A numpy array that owns the vector's memory (no copy).
template <typename T>
py::array_t<T> to_numpy(std::vector<T>&& values, std::vector<py::ssize_t> shape) {
  auto* owned = new std::vector<T>(std::move(values));
  py::capsule free_when_done(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>(shape, owned->data(), free_when_done);
}

py::dict skeleton_dict(msclr::io::NtuSkeleton&& s) {
  const auto bodies = static_cast<py::ssize_t>(s.body_id.size());
  py::dict d;
  d["num_frames"] = s.num_frames;
  d["bodies_per_frame"] = to_numpy(std::move(s.bodies_per_frame), {static_cast<py::ssize_t>(s.num_frames)});
  d["body_id"] = to_numpy(std::move(s.body_id), {bodies});
  d["body_info"] = to_numpy(std::move(s.body_info), {bodies, msclr::io::kNtuBodyFields});
  d["joints"] = to_numpy(std::move(s.joints), {bodies, s.num_joints, msclr::io::kNtuJointFields});
  return d;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "msclr compiled kernels (C++ CPU, optional CUDA), registered as torch.ops.msclr.*";
  m.def("built_with_cuda", [] {
#ifdef MSCLR_WITH_CUDA
    return true;
#else
    return false;
#endif
  });
  m.def("torch_version", [] {
    return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
           std::to_string(TORCH_VERSION_PATCH);
  });
  m.def("cuda_version", []() -> std::string {
#ifdef MSCLR_CUDA_VERSION
    return MSCLR_CUDA_VERSION;
#else
    return "";
#endif
  });

  // NTU RGB+D .skeleton parser (csrc/io): the GIL is released while the file is read and
  // parsed, so Python threads parse files in parallel.
  py::register_exception<msclr::io::ParseError>(m, "SkeletonParseError", PyExc_ValueError);
  py::register_exception<msclr::io::FileError>(m, "SkeletonFileError", PyExc_OSError);
  m.def(
      "parse_ntu_skeleton_file",
      [](const std::string& path, int num_joints) {
        msclr::io::NtuSkeleton s;
        {
          py::gil_scoped_release no_gil;
          s = msclr::io::read_ntu_skeleton(path, num_joints);
        }
        return skeleton_dict(std::move(s));
      },
      py::arg("path"), py::arg("num_joints") = 25,
      "Parse an NTU .skeleton file: dict of num_frames, bodies_per_frame (F,) int32, body_id (B,) int64, "
      "body_info (B, 9) float64, joints (B, J, 12) float32. SkeletonParseError (a ValueError) names the "
      "file and line of malformed input.");
  m.def(
      "parse_ntu_skeleton_bytes",
      [](const py::bytes& data, const std::string& name, int num_joints) {
        char* buffer = nullptr;
        Py_ssize_t size = 0;
        if (PyBytes_AsStringAndSize(data.ptr(), &buffer, &size) != 0) throw py::error_already_set();
        msclr::io::NtuSkeleton s;
        {
          py::gil_scoped_release no_gil;  // `data` is immutable and held by the caller
          s = msclr::io::parse_ntu_skeleton(std::string_view(buffer, static_cast<size_t>(size)), name, num_joints);
        }
        return skeleton_dict(std::move(s));
      },
      py::arg("data"), py::arg("name") = "<bytes>", py::arg("num_joints") = 25,
      "parse_ntu_skeleton_file on the bytes of a file.");
}
