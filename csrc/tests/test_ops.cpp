// C++ tests of the msclr ops through the dispatcher (what Python calls too).
// Plain asserts with messages; exit code 0 means all passed (one ctest entry per test file).
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "PASS" : "FAIL", what.c_str());
  if (!ok) ++failures;
}

void enqueue(at::Tensor& queue, at::Tensor& ptr, const at::Tensor& keys) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("msclr::enqueue_", "")
                       .typed<void(at::Tensor&, at::Tensor&, const at::Tensor&)>();
  op.call(queue, ptr, keys);
}

bool throws(const std::function<void()>& f) {
  try {
    f();
  } catch (const c10::Error&) {
    return true;
  }
  return false;
}

void test_enqueue_wraps() {
  auto queue = at::zeros({5, 3});
  auto ptr = at::full({1}, 3, at::kLong);
  auto keys = at::arange(1, 5, at::kFloat).unsqueeze(1).expand({4, 3}).contiguous();
  enqueue(queue, ptr, keys);
  // rows 3, 4, 0, 1 receive keys 1, 2, 3, 4; row 2 untouched; pointer 3 + 4 = 7 = 2 (mod 5)
  auto expected = at::tensor({3.f, 4.f, 0.f, 1.f, 2.f}).unsqueeze(1).expand({5, 3});
  expect(at::equal(queue, expected), "enqueue writes rows at the pointer and wraps");
  expect(ptr.item<int64_t>() == 2, "enqueue advances the pointer modulo Q");
}

void test_enqueue_dtypes() {
  for (auto dt : {at::kHalf, at::kBFloat16, at::kDouble}) {
    auto queue = at::zeros({4, 7}, dt);
    auto ptr = at::zeros({1}, at::kLong);
    auto keys = at::randn({4, 7}).to(dt);
    enqueue(queue, ptr, keys);
    expect(at::equal(queue, keys) && ptr.item<int64_t>() == 0,
           std::string("enqueue of a full queue in ") + c10::toString(dt));
  }
}

void test_enqueue_errors() {
  auto queue = at::zeros({4, 3});
  auto ptr = at::zeros({1}, at::kLong);
  expect(throws([&] { enqueue(queue, ptr, at::zeros({5, 3})); }), "more keys than queue rows is an error");
  expect(throws([&] { enqueue(queue, ptr, at::zeros({2, 4})); }), "key width mismatch is an error");
  expect(throws([&] { enqueue(queue, ptr, at::zeros({2, 3}, at::kDouble)); }), "dtype mismatch is an error");
  auto bad_ptr = at::full({1}, 9, at::kLong);
  expect(throws([&] { enqueue(queue, bad_ptr, at::zeros({2, 3})); }), "pointer outside the queue is an error");
}

}  // namespace

int main() {
  test_enqueue_wraps();
  test_enqueue_dtypes();
  test_enqueue_errors();
  std::printf("%d failure(s)\n", failures);
  return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
