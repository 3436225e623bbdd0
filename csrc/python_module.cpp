// The Python module msclr._C. Importing it runs the static TORCH_LIBRARY
// registrations of every source linked in; the functions below report what was built.
#include <pybind11/pybind11.h>
#include <torch/headeronly/version.h>

#include <string>

#ifndef TORCH_EXTENSION_NAME
#define TORCH_EXTENSION_NAME _C
#endif

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
}
