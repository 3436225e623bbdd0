// C++ tests of the NTU .skeleton parser (csrc/io). Plain checks with messages; exit code 0 means
// all passed (one ctest entry per test file, CMakeLists.txt).
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>

#include "../io/ntu_skeleton.h"

namespace {

int ntu_failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "PASS" : "FAIL", what.c_str());
  if (!ok) ++ntu_failures;
}

std::string joint_lines(int n) {
  std::string out;
  for (int j = 0; j < n; ++j) out += "0.1 -0.2 3.5 250 200 900 500 1 0 0 0 2\r\n";
  return out;
}

std::string body(const char* id) { return std::string(id) + " 0 1 1 1 1 0 0.5 -0.25 2\r\n25\r\n" + joint_lines(25); }

// Line number of the ParseError `text` raises, or -1 when it parses.
long error_line(const std::string& text) {
  try {
    msclr::io::parse_ntu_skeleton(text, "t.skeleton");
  } catch (const msclr::io::ParseError& e) {
    return static_cast<long>(e.line());
  }
  return -1;
}

void test_valid_file() {
  const std::string text = "3\r\n0\r\n1\r\n" + body("72057594037931101") + "2\r\n" + body("7") + body("8");
  auto s = msclr::io::parse_ntu_skeleton(text, "t.skeleton");
  check(s.num_frames == 3 && s.bodies_per_frame == std::vector<int32_t>({0, 1, 2}), "frame and body counts");
  check(s.body_id.size() == 3 && s.body_id[0] == 72057594037931101LL && s.body_id[2] == 8, "body ids");
  check(s.body_info.size() == 27 && s.body_info[7] == -0.25, "body info");
  check(s.joints.size() == 3u * 25 * 12 && s.joints[1] == -0.2f && s.joints[11] == 2.0f, "joint values");
}

void test_errors_name_the_line() {
  check(error_line("") == 1, "empty file: line 1");
  check(error_line("2\n0\n") == 3, "missing frame: line 3");
  check(error_line("1\n1\n7 0 1 1 1 1 0 0.5 x 2\n") == 3, "non-numeric body field: line 3");
  check(error_line("1\n1\n" + body("7").substr(0, 60)) == 5, "joint line cut short: line 5");
  check(error_line("1\n1\n7 0 1 1 1 1 0 0.5 0.5 2\n25\n1 2 3\n") == 5, "short joint line: line 5");
  check(error_line("1\n1\n7 0 1 1 1 1 0 0.5 0.5 2\n25\n" + joint_lines(24) + "1e39 0 0 0 0 0 0 0 0 0 0 0\n") == 29,
        "float32 overflow: line 29");
  check(error_line("0\n\nx\n") == 3, "trailing content: line 3");
  check(error_line("1\n99999\n") == 2, "too many bodies: line 2");
}

void test_file_errors() {
  bool thrown = false;
  try {
    msclr::io::read_ntu_skeleton("/nonexistent/dir/x.skeleton");
  } catch (const msclr::io::FileError&) {
    thrown = true;
  }
  check(thrown, "missing file raises FileError");
}

}  // namespace

int main() {
  test_valid_file();
  test_errors_name_the_line();
  test_file_errors();
  std::printf("%d failure(s)\n", ntu_failures);
  return ntu_failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
