// NTU RGB+D .skeleton parser; the grammar is documented in ntu_skeleton.h.
#include "ntu_skeleton.h"

#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <system_error>

namespace msclr::io {
namespace {

// Fields kept per line: one more than the longest record (a joint line, 12 fields).
constexpr int kTokenCapacity = kNtuJointFields + 1;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Quoted, shortened token for error messages.
std::string quote(std::string_view t) {
  std::string out = "'";
  for (char c : t.substr(0, 40)) {
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      out += c;
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[(static_cast<unsigned char>(c) >> 4) & 0xf];
      out += hex[static_cast<unsigned char>(c) & 0xf];
    }
  }
  if (t.size() > 40) out += "...";
  return out + "'";
}

class Reader {
 public:
  Reader(std::string_view text, const std::string& name) : text_(text), name_(name) {}

  // The next line as fields; `what` names the record in errors. Throws when the text ended.
  // `what_fmt` names the record in errors: up to three '%' placeholders filled with a, b, c
  // (formatted only when an error is raised).
  int fields(const char* what_fmt, int64_t a, int64_t b, int64_t c, std::string_view* out) {
    fmt_ = what_fmt;
    args_[0] = a, args_[1] = b, args_[2] = c;
    std::string_view line;
    if (!next_line(line)) {
      ++line_;  // the line that is missing
      fail("file ended early: expected " + what());
    }
    return split(line, out);
  }

  // True when only blank lines are left.
  bool only_blank_lines_left() {
    std::string_view line, tok[kTokenCapacity];
    while (next_line(line)) {
      if (split(line, tok) != 0) return false;
    }
    return true;
  }

  [[noreturn]] void fail(const std::string& message) const { throw ParseError(name_, line_, message); }

  void expect_count(int got, int want) const {
    if (got != want) {
      fail(what() + ": expected " + std::to_string(want) + (want == 1 ? " field" : " fields") + ", got " +
           (got > kTokenCapacity ? "more than " + std::to_string(kTokenCapacity) : std::to_string(got)));
    }
  }

  // Unsigned integer < 2^63.
  int64_t integer(std::string_view t, int field) const {
    bool ok = !t.empty();
    for (char ch : t) ok = ok && is_digit(ch);
    int64_t v = 0;
    if (ok) {
      auto r = std::from_chars(t.data(), t.data() + t.size(), v);
      ok = r.ec == std::errc() && r.ptr == t.data() + t.size();
    }
    if (!ok) fail(what() + ": field " + std::to_string(field) + " (" + quote(t) + ") is not an unsigned integer");
    return v;
  }

  double number(std::string_view t, int field) const {
    if (!is_number(t)) fail(what() + ": field " + std::to_string(field) + " (" + quote(t) + ") is not a number");
    const char* first = t.data();
    const char* last = t.data() + t.size();
    if (*first == '+') ++first;  // from_chars does not take a '+'
    double v = 0.0;
    auto r = std::from_chars(first, last, v, std::chars_format::general);
    if (r.ec == std::errc::result_out_of_range) {
      fail(what() + ": field " + std::to_string(field) + " (" + quote(t) + ") is out of range");
    }
    if (r.ec != std::errc() || r.ptr != last) {
      fail(what() + ": field " + std::to_string(field) + " (" + quote(t) + ") is not a number");
    }
    return v;
  }

  float float32(std::string_view t, int field) const {
    double v = number(t, field);
    if (std::fabs(v) > static_cast<double>(FLT_MAX)) {
      fail(what() + ": field " + std::to_string(field) + " (" + quote(t) + ") is out of float32 range");
    }
    return static_cast<float>(v);
  }

  std::string what() const {
    std::string out;
    int k = 0;
    for (const char* p = fmt_; *p; ++p) {
      if (*p == '%' && k < 3) {
        out += std::to_string(args_[k++]);
      } else {
        out += *p;
      }
    }
    return out;
  }

 private:
  // [+-]?(digits[.digits*] | .digits)([eE][+-]?digits)?
  static bool is_number(std::string_view t) {
    size_t i = 0, n = t.size();
    if (i < n && (t[i] == '+' || t[i] == '-')) ++i;
    size_t mantissa = 0;
    while (i < n && is_digit(t[i])) ++i, ++mantissa;
    if (i < n && t[i] == '.') {
      ++i;
      while (i < n && is_digit(t[i])) ++i, ++mantissa;
    }
    if (mantissa == 0) return false;
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
      ++i;
      if (i < n && (t[i] == '+' || t[i] == '-')) ++i;
      size_t exponent = 0;
      while (i < n && is_digit(t[i])) ++i, ++exponent;
      if (exponent == 0) return false;
    }
    return i == n;
  }

  bool next_line(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    size_t end = text_.find('\n', pos_);
    if (end == std::string_view::npos) end = text_.size();
    line = text_.substr(pos_, end - pos_);
    pos_ = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    ++line_;
    return true;
  }

  // Fields separated by runs of spaces/tabs. Returns the count; stops counting past the
  // capacity (kTokenCapacity + 1 means "more than any record has").
  static int split(std::string_view line, std::string_view* out) {
    int count = 0;
    size_t i = 0, n = line.size();
    while (i < n) {
      while (i < n && (line[i] == ' ' || line[i] == '\t')) ++i;
      if (i >= n) break;
      size_t start = i;
      while (i < n && line[i] != ' ' && line[i] != '\t') ++i;
      if (count == kTokenCapacity) return kTokenCapacity + 1;
      out[count++] = line.substr(start, i - start);
    }
    return count;
  }

  std::string_view text_;
  const std::string& name_;
  size_t pos_ = 0;
  int64_t line_ = 0;
  const char* fmt_ = "";
  int64_t args_[3] = {0, 0, 0};
};

}  // namespace

NtuSkeleton parse_ntu_skeleton(std::string_view text, const std::string& name, int expected_joints) {
  if (expected_joints < 1 || expected_joints > 1000) {
    throw std::invalid_argument("expected_joints must be in 1..1000");
  }
  Reader in(text, name);
  std::string_view tok[kTokenCapacity];
  NtuSkeleton out;
  out.num_joints = expected_joints;

  int n = in.fields("the frame count", 0, 0, 0, tok);
  in.expect_count(n, 1);
  const int64_t frames = in.integer(tok[0], 1);
  if (frames > kMaxFrames) in.fail("frame count " + std::to_string(frames) + " exceeds " + std::to_string(kMaxFrames));
  out.num_frames = frames;
  // Every frame takes at least one line: never reserve more than the text could hold.
  out.bodies_per_frame.reserve(static_cast<size_t>(std::min<int64_t>(frames, static_cast<int64_t>(text.size()))));

  for (int64_t f = 1; f <= frames; ++f) {
    n = in.fields("the body count of frame %", f, 0, 0, tok);
    in.expect_count(n, 1);
    const int64_t bodies = in.integer(tok[0], 1);
    if (bodies > kMaxBodiesPerFrame) {
      in.fail(in.what() + ": " + std::to_string(bodies) + " bodies (more than " + std::to_string(kMaxBodiesPerFrame) +
              ")");
    }
    out.bodies_per_frame.push_back(static_cast<int32_t>(bodies));
    for (int64_t b = 1; b <= bodies; ++b) {
      n = in.fields("the body line of body % of frame %", b, f, 0, tok);
      in.expect_count(n, 1 + kNtuBodyFields);
      out.body_id.push_back(in.integer(tok[0], 1));
      for (int k = 1; k <= kNtuBodyFields; ++k) out.body_info.push_back(in.number(tok[k], k + 1));

      n = in.fields("the joint count of body % of frame %", b, f, 0, tok);
      in.expect_count(n, 1);
      const int64_t joints = in.integer(tok[0], 1);
      if (joints != expected_joints) {
        in.fail(in.what() + ": " + std::to_string(joints) + " joints, expected " + std::to_string(expected_joints));
      }
      for (int64_t j = 1; j <= joints; ++j) {
        n = in.fields("joint % of body % of frame %", j, b, f, tok);
        in.expect_count(n, kNtuJointFields);
        for (int k = 0; k < kNtuJointFields; ++k) out.joints.push_back(in.float32(tok[k], k + 1));
      }
    }
  }
  if (!in.only_blank_lines_left()) in.fail("unexpected content after the last frame");
  return out;
}

NtuSkeleton read_ntu_skeleton(const std::string& path, int expected_joints) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw FileError("cannot open " + path + ": " + std::strerror(errno));
  file.seekg(0, std::ios::end);
  const std::streamoff size = file.tellg();
  if (size < 0) throw FileError("cannot read " + path);
  if (size > (std::streamoff(1) << 30)) throw FileError(path + " is larger than 1 GiB; not a .skeleton file");
  file.seekg(0, std::ios::beg);
  std::string text(static_cast<size_t>(size), '\0');
  if (size > 0 && !file.read(text.data(), size)) throw FileError("cannot read " + path);
  return parse_ntu_skeleton(text, path, expected_joints);
}

}  // namespace msclr::io
