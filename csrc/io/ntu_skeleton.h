// Parser of NTU RGB+D .skeleton text files (Kinect v2 bodies), pure C++ (no torch, no
// Python): the pybind11 binding lives in csrc/python_module.cpp, the readable reference in
// msclr/data/ntu_skeleton.py. Both implement exactly the grammar below and give identical arrays.
//
// File grammar (one record per line; a line ends with '\n', one trailing '\r' is dropped;
// fields are separated by runs of spaces/tabs, leading/trailing spaces/tabs are ignored):
//
//   <frame count>                                   unsigned integer
//   per frame:  <body count>                        unsigned integer <= kMaxBodiesPerFrame
//     per body: <bodyID> <9 numbers>                bodyID: unsigned integer < 2^63;
//                                                   clippedEdges, handLeftConfidence,
//                                                   handLeftState, handRightConfidence,
//                                                   handRightState, isRestricted, leanX,
//                                                   leanY, trackingState
//               <joint count>                       must equal the expected joint count (25)
//               per joint: <12 numbers>             x y z depthX depthY colorX colorY
//                                                   orientationW X Y Z trackingState
//   then only blank lines.
//
// Numbers: [+-]?(digits[.digits*] | .digits)([eE][+-]?digits)?  (no nan/inf/hex/'_'),
// rounded to double; a finite non-zero value that rounds to 0 or to infinity is an error,
// and joint values must fit a float32 (they are stored as float32).
//
// Every read is bounds-checked: malformed, truncated or hostile input raises ParseError
// with the file name and the 1-based line number, never undefined behaviour.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace msclr::io {

inline constexpr int kNtuJointFields = 12;
inline constexpr int kNtuBodyFields = 9;  // after the body id
inline constexpr int64_t kMaxBodiesPerFrame = 64;
inline constexpr int64_t kMaxFrames = 1000000;

struct NtuSkeleton {
  int64_t num_frames = 0;                // declared frame count (= bodies_per_frame.size())
  int32_t num_joints = 25;               // joints per body
  std::vector<int32_t> bodies_per_frame;  // (F)
  std::vector<int64_t> body_id;           // (B) bodies in file order, frame by frame
  std::vector<double> body_info;          // (B, 9)
  std::vector<float> joints;              // (B, J, 12)
};

// A malformed file: what() is "<name>:<line>: <message>".
class ParseError : public std::runtime_error {
 public:
  ParseError(const std::string& name, int64_t line, const std::string& message)
      : std::runtime_error(name + ":" + std::to_string(line) + ": " + message), line_(line) {}
  int64_t line() const { return line_; }

 private:
  int64_t line_;
};

// The file cannot be opened or read.
class FileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parse the text of one file; `name` is used in error messages.
NtuSkeleton parse_ntu_skeleton(std::string_view text, const std::string& name, int expected_joints = 25);

// Read and parse one file (FileError when it cannot be read, ParseError when malformed).
NtuSkeleton read_ntu_skeleton(const std::string& path, int expected_joints = 25);

}  // namespace msclr::io
