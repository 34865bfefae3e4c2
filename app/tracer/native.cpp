// The tracer's per-node costs, done without a Python call per node:
//   Ops:           graph.Graph's Python path for the usual operation (node, event, edges);
//   Steps:         one C++ hook per autograd node for the length of a backward pass, recording in
//                  the engine's own order which node ran and the gradients it got and gave;
//   encode, flush: tensors -> JSON-ready values (nested lists, NaN/Inf as strings) and stats,
//                  flush writing them where values.Deferred was asked to.
// Built by `make` (scripts/build_native.py), imported by app/tracer/native.py. app/tracer/values.py holds the same rules in Python,
// the reference the tests compare this against, and the path for what this file does not read
// (complex, quantized, sparse, non-CPU tensors): for those it hands the tensor back.

// fmt as torch ships it, its definitions compiled here (libc10 exports none): Dragonbox for shortest_fast
#define FMT_HEADER_ONLY
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/accumulate_grad.h>
#include <torch/csrc/autograd/python_cpp_function.h>
#include <torch/csrc/autograd/python_function.h>
#include <torch/csrc/autograd/python_variable.h>
#include <pybind11/pybind11.h>
#include <fmt/format.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <charconv>
#include <cmath>
#include <cstring>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace py = pybind11;
using torch::autograd::Node;
using torch::autograd::variable_list;

namespace {

// -- values -----------------------------------------------------------------------------------

PyObject* special(double x) {  // strict JSON has no NaN or Infinity: the trace spells them
  static PyObject* nan = PyUnicode_InternFromString("NaN");
  static PyObject* inf = PyUnicode_InternFromString("Infinity");
  static PyObject* ninf = PyUnicode_InternFromString("-Infinity");
  PyObject* s = std::isnan(x) ? nan : (x > 0 ? inf : ninf);
  Py_INCREF(s);
  return s;
}

// t's shape as a list; a nested tensor's ragged dimensions (no one size) as -1, as values.shape_of.
py::list shape_of(const at::Tensor& t) {
  if (!t.is_nested() && !t.unsafeGetTensorImpl()->has_symbolic_sizes_strides()) {
    at::IntArrayRef sizes = t.sizes();
    py::list shape(sizes.size());
    for (size_t d = 0; d < sizes.size(); ++d) shape[d] = py::int_(sizes[d]);
    return shape;
  }
  py::list shape(t.dim());
  for (int64_t d = 0; d < t.dim(); ++d) {
    int64_t size = -1;
    try {
      if (auto known = t.sym_size(d).maybe_as_int()) size = *known;
    } catch (const c10::Error&) {  // torch.nested's strided layout has no size for a ragged dimension
    }
    shape[d] = py::int_(size);
  }
  return shape;
}

bool readable(const at::Tensor& t) {
  // No storage: a functorch wrapper (grad, vmap) or a meta tensor. Lazy conjugate or negative
  // views: values.py resolves them. A nested tensor has no one size. All are handed back.
  if (!t.defined() || t.layout() != at::kStrided || t.is_nested() || !t.device().is_cpu() || t.is_neg() || t.is_conj() ||
      !t.has_storage()) {
    return false;
  }
  switch (t.scalar_type()) {
    case at::kFloat: case at::kDouble: case at::kHalf: case at::kBFloat16:
    case at::kLong: case at::kInt: case at::kShort: case at::kChar: case at::kByte: case at::kBool:
      return true;
    default:
      return false;
  }
}

// -- the shortest decimal of a float in its own dtype ------------------------------------------
// JSON readers parse a decimal to the nearest double, and torch casts that to the tensor's dtype:
// a value is written as the shortest decimal that comes back as the same float through that
// chain, as the double nearest to it (which Python and orjson then print with the same digits).
// values.py's `shortest` gives the same digits in Python; the tests hold both to each other.

template <typename T>
bool comes_back(const char* first, const char* last, T x, double* d) {
  std::from_chars(first, last, *d);
  return static_cast<T>(static_cast<float>(*d)) == x;
}

int significant_digits(const char* first, const char* last) {  // of "134217730", "0.0125", "1.5e-07": 8, 3, 2
  int n = 0, zeros = 0;  // zeros: the trailing ones so far
  bool leading = true;
  for (const char* c = first; c < last && *c != 'e'; ++c) {
    if (*c < '0' || *c > '9' || (leading && *c == '0')) continue;
    leading = false;
    ++n;
    zeros = *c == '0' ? zeros + 1 : 0;
  }
  return n - zeros;
}

// A decimal as its significant digits and the exponent of the first: "-1.2345e-07" is -, "12345", -7.
struct Digits {
  bool negative = false;
  char digits[24];
  int n = 0;
  int exponent = 0;
};

Digits digits_of(const char* first, const char* last) {  // of std::to_chars' scientific form
  Digits out;
  const char* c = first;
  if (*c == '-') {
    out.negative = true;
    ++c;
  }
  for (; c < last && *c != 'e'; ++c) {
    if (*c != '.') out.digits[out.n++] = *c;
  }
  std::from_chars(c + 1 + (c[1] == '+'), last, out.exponent);
  return out;
}

constexpr double kPowersOfTen[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

// The double nearest to the decimal, as from_chars gives it, where one IEEE operation on exact
// operands gives it (Clinger's fast path: at most 15 digits, a power of ten up to 1e22); false elsewhere.
bool nearest_double(const Digits& s, double* d) {
  if (s.n > 15) return false;
  int64_t m = 0;
  for (int i = 0; i < s.n; ++i) m = m * 10 + (s.digits[i] - '0');
  int p = s.exponent - (s.n - 1);  // the decimal is m * 10^p
  if (p < -22 || p > 22) return false;
  double v = static_cast<double>(m);  // exact: m < 10^15 < 2^53
  v = p < 0 ? v / kPowersOfTen[-p] : v * kPowersOfTen[p];
  *d = s.negative ? -v : v;
  return true;
}

// x's shortest round trip as float, when the double nearest to it comes back as x: the decimal
// `shortest` returns, most of the time, without formatting or parsing text. Its digits are
// Dragonbox's (fmt, as torch ships it): the same as std::to_chars' shortest scientific form for every
// float32 that is not a power of two (checked over all of them when this was written; the tests hold
// a sample of the bytes to values.py's), in a fraction of the time.
bool shortest_fast(float x, Digits* s, double* d) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  if ((bits & 0x7FFFFFu) == 0 || !std::isfinite(x)) return false;  // a power of two (see shortest), zero, NaN, ±Inf
  auto decimal = fmt::detail::dragonbox::to_decimal(x);  // x's magnitude as significand * 10^exponent
  uint32_t m = decimal.significand;
  s->negative = (bits >> 31) != 0;
  auto r = std::to_chars(s->digits, s->digits + sizeof s->digits, m);
  s->n = static_cast<int>(r.ptr - s->digits);
  s->exponent = decimal.exponent + s->n - 1;
  return nearest_double(*s, d) && static_cast<float>(*d) == x;
}

double shortest(float x) {
  if (x == 0) return static_cast<double>(x);  // ±0, as the loop below finds it (masked gradients are full of them)
  Digits fast;
  double d;
  if (shortest_fast(x, &fast, &d)) return d;
  char buf[48];
  auto r = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);  // the shortest round trip
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  // It is the correctly rounded decimal of its length, but where x is a power of two: the gap below
  // x is half the gap above, so a decimal further above may come back where the nearest does not.
  if ((bits & 0x7FFFFFu) != 0 && comes_back(buf, r.ptr, x, &d)) return d;
  // the correctly rounded decimal with that many digits, or more where the double chain needs it
  for (int p = std::max(1, significant_digits(buf, r.ptr)); p <= 9; ++p) {
    r = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::general, p);
    if (comes_back(buf, r.ptr, x, &d)) return d;
  }
  return static_cast<double>(x);  // 9 digits always come back
}

template <typename H>
double shortest_small(H h) {  // float16, bfloat16: a few digits, tried in turn
  float x = static_cast<float>(h);
  char buf[48];
  double d;
  for (int p = 1; p <= 9; ++p) {
    auto r = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::general, p);
    if (comes_back(buf, r.ptr, h, &d)) return d;
  }
  return static_cast<double>(x);
}

template <typename T>
double decimal(T x) {  // x as the value the trace writes (finite x)
  if constexpr (std::is_same_v<T, float>) {
    return shortest(x);
  } else if constexpr (std::is_same_v<T, c10::Half> || std::is_same_v<T, c10::BFloat16>) {
    return shortest_small(x);
  } else {
    return static_cast<double>(x);
  }
}

template <typename T>
PyObject* written(T x) {  // a float of the tensor's dtype, NaN/Inf spelled out
  double d = static_cast<double>(x);
  return std::isfinite(d) ? PyFloat_FromDouble(decimal(x)) : special(d);
}

template <typename T>
PyObject* written_double(double x) {  // a statistic computed in double, written in T's precision
  if (!std::isfinite(x)) return special(x);
  if constexpr (std::is_same_v<T, double>) {
    return PyFloat_FromDouble(x);
  } else {
    T narrow = static_cast<T>(static_cast<float>(x));
    double back = static_cast<double>(narrow);
    if (!std::isfinite(back)) return special(back);  // past the dtype's range
    return PyFloat_FromDouble(decimal(narrow));
  }
}

// One element as Python sees it after tolist(), NaN/Inf spelled out.
template <typename T>
PyObject* element(T x) {
  if constexpr (std::is_same_v<T, bool>) {
    return PyBool_FromLong(x);
  } else if constexpr (std::is_integral_v<T>) {
    return PyLong_FromLongLong(static_cast<long long>(x));
  } else {
    return written(x);
  }
}

template <typename T>
PyObject* nested(const T* data, at::IntArrayRef sizes, size_t dim) {
  if (dim == sizes.size()) {
    return element(*data);
  }
  int64_t n = sizes[dim];
  int64_t inner = 1;
  for (size_t d = dim + 1; d < sizes.size(); ++d) inner *= sizes[d];
  PyObject* list = PyList_New(n);
  if (list == nullptr) throw py::error_already_set();
  for (int64_t i = 0; i < n; ++i) {
    PyObject* x = nested(data + i * inner, sizes, dim + 1);
    if (x == nullptr) {
      Py_DECREF(list);
      throw py::error_already_set();
    }
    PyList_SET_ITEM(list, i, x);
  }
  return list;
}

// -- the value as JSON text ------------------------------------------------------------------
// What orjson writes for the Python value `nested` makes, written here directly: the bytes go into
// the trace as an orjson.Fragment, with no Python float or list per element, and the trace is
// dumped (twice where it is over its byte budget) without formatting those floats again.
// orjson's floats: the shortest round trip of the double, fixed between 1e-5 and 1e16
// ("0.000012345", "12345.0"), else "1.2345e-7", "1e+16". tests/tracer/test_native.py holds these
// bytes to orjson.dumps of the Python value.

// Each writer puts its text at `p` and returns where it ends; json_value gives them room enough.
constexpr int64_t kElementChars = 25;  // the longest element and its comma: "-1.2345678901234567e-308,"

char* put(char* p, const char* text, size_t n) {
  std::memcpy(p, text, n);
  return p + n;
}

char* json_digits(char* p, const Digits& s) {  // the shortest round trip of a double, in its digits
  if (s.negative) *p++ = '-';
  const char* digits = s.digits;
  int n = s.n, exponent = s.exponent;
  if (exponent < -5 || exponent >= 16) {
    *p++ = digits[0];
    if (n > 1) {
      *p++ = '.';
      p = put(p, digits + 1, static_cast<size_t>(n - 1));
    }
    *p++ = 'e';
    *p++ = exponent < 0 ? '-' : '+';
    return std::to_chars(p, p + 8, exponent < 0 ? -exponent : exponent).ptr;
  }
  if (exponent < 0) {
    p = put(p, "0.", 2);
    std::memset(p, '0', static_cast<size_t>(-exponent - 1));
    return put(p + (-exponent - 1), digits, static_cast<size_t>(n));
  }
  int whole = exponent + 1;  // digits before the point
  if (n <= whole) {
    p = put(p, digits, static_cast<size_t>(n));
    std::memset(p, '0', static_cast<size_t>(whole - n));
    return put(p + (whole - n), ".0", 2);
  }
  p = put(p, digits, static_cast<size_t>(whole));
  *p++ = '.';
  return put(p, digits + whole, static_cast<size_t>(n - whole));
}

char* json_double(char* p, double d) {  // finite d
  char buf[40];
  auto r = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);  // "-1.2345e-07"
  return json_digits(p, digits_of(buf, r.ptr));
}

char* json_special(char* p, double x) {
  if (std::isnan(x)) return put(p, "\"NaN\"", 5);
  return x > 0 ? put(p, "\"Infinity\"", 10) : put(p, "\"-Infinity\"", 11);
}

template <typename T>
char* json_element(char* p, T x) {  // as element(x), as orjson writes it
  if constexpr (std::is_same_v<T, bool>) {
    return x ? put(p, "true", 4) : put(p, "false", 5);
  } else if constexpr (std::is_integral_v<T>) {
    return std::to_chars(p, p + kElementChars, static_cast<long long>(x)).ptr;
  } else {
    if constexpr (std::is_same_v<T, float>) {
      // The double nearest to x's shortest decimal prints with that decimal's digits (two decimals
      // of at most 15 digits never share a double): written from them, not formatted again.
      Digits fast;
      double nearest;
      if (shortest_fast(x, &fast, &nearest)) return json_digits(p, fast);
    }
    double d = static_cast<double>(x);
    if (d == 0) {  // ±0 of any width, as json_double writes it: a zero's decimal is itself
      return std::signbit(d) ? put(p, "-0.0", 4) : put(p, "0.0", 3);
    }
    return std::isfinite(d) ? json_double(p, decimal(x)) : json_special(p, d);
  }
}

template <typename T>
char* json_nested(char* p, const T* data, at::IntArrayRef sizes, size_t dim) {
  int64_t n = sizes[dim];
  *p++ = '[';
  if (dim + 1 == sizes.size()) {  // the innermost lists: the elements themselves
    for (int64_t i = 0; i < n; ++i) {
      if (i) *p++ = ',';
      p = json_element(p, data[i]);
    }
  } else {
    int64_t inner = 1;
    for (size_t d = dim + 1; d < sizes.size(); ++d) inner *= sizes[d];
    for (int64_t i = 0; i < n; ++i) {
      if (i) *p++ = ',';
      p = json_nested(p, data + i * inner, sizes, dim + 1);
    }
  }
  *p++ = ']';
  return p;
}

// A tensor of one or more dimensions as orjson.Fragment(its JSON text); `fragment` is that class.
// The text is written straight into the bytes object, made as big as it can be and cut to size.
template <typename T>
PyObject* json_value(const T* data, at::IntArrayRef sizes, PyObject* fragment) {
  int64_t lists = 1, outer = 1;  // every list's brackets and commas: 1 + s0 + s0*s1 + ... lists
  for (size_t d = 0; d + 1 < sizes.size(); ++d) {
    outer *= sizes[d];
    lists += outer;
  }
  int64_t room = c10::multiply_integers(sizes) * kElementChars + lists * 3;
  PyObject* bytes = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(room));
  if (bytes == nullptr) throw py::error_already_set();
  char* first = PyBytes_AS_STRING(bytes);
  char* end = json_nested(first, data, sizes, 0);
  if (_PyBytes_Resize(&bytes, static_cast<Py_ssize_t>(end - first)) != 0) throw py::error_already_set();  // frees it on failure
  PyObject* f = PyObject_CallOneArg(fragment, bytes);
  Py_DECREF(bytes);
  if (f == nullptr) throw py::error_already_set();
  return f;
}

// {numel, min, max, mean, std, nan_count, inf_count} over the finite elements, as values.py does:
// in double, summed in order, std with Bessel's correction.
// A big tensor's sum, least and greatest elements in one pass, four sums apart (in a fixed order, so
// the same bytes give the same stats); false where an element is NaN or infinite.
template <typename T>
bool finite_sums(const T* data, int64_t n, double* total, double* lo, double* hi) {
  double s[4] = {0, 0, 0, 0};
  double small = static_cast<double>(data[0]), big = small;
  int64_t i = 0;
#ifdef __SSE2__
  if constexpr (std::is_same_v<T, float>) {
    // The same sums two lanes at a time (lane k adds elements k, k + 4, ...: the same additions in the
    // same order), the least and greatest per lane (minpd is `x < small ? x : small`, as below).
    __m128d s01 = _mm_setzero_pd(), s23 = s01, first = _mm_set1_pd(small);
    __m128d small01 = first, small23 = first, big01 = first, big23 = first;
    for (; i + 4 <= n; i += 4) {
      __m128 x = _mm_loadu_ps(data + i);
      __m128d x01 = _mm_cvtps_pd(x), x23 = _mm_cvtps_pd(_mm_movehl_ps(x, x));
      s01 = _mm_add_pd(s01, x01);
      s23 = _mm_add_pd(s23, x23);
      small01 = _mm_min_pd(x01, small01);
      small23 = _mm_min_pd(x23, small23);
      big01 = _mm_max_pd(x01, big01);
      big23 = _mm_max_pd(x23, big23);
    }
    _mm_storeu_pd(s, s01);
    _mm_storeu_pd(s + 2, s23);
    double lanes[4];
    _mm_storeu_pd(lanes, _mm_min_pd(small01, small23));
    small = lanes[0] < lanes[1] ? lanes[0] : lanes[1];
    _mm_storeu_pd(lanes, _mm_max_pd(big01, big23));
    big = lanes[0] > lanes[1] ? lanes[0] : lanes[1];
  }
#endif
  for (; i + 4 <= n; i += 4) {
    for (int k = 0; k < 4; ++k) {
      double x = static_cast<double>(data[i + k]);
      s[k] += x;
      small = x < small ? x : small;
      big = x > big ? x : big;
    }
  }
  for (; i < n; ++i) {
    double x = static_cast<double>(data[i]);
    s[0] += x;
    small = x < small ? x : small;
    big = x > big ? x : big;
  }
  *total = (s[0] + s[1]) + (s[2] + s[3]);
  // A least or greatest of zero is the first zero in order, +0.0 or -0.0, as the loop above in one
  // lane finds it (the lanes may each hold another one).
  for (double* bound : {&small, &big}) {
    if (*bound == 0) {
      for (int64_t k = 0; k < n; ++k) {
        if (static_cast<double>(data[k]) == 0) {
          *bound = static_cast<double>(data[k]);
          break;
        }
      }
    }
  }
  *lo = small;
  *hi = big;
  return std::isfinite(*total) && std::isfinite(small) && std::isfinite(big);
}

template <typename T>
double squared_deviations(const T* data, int64_t n, double mean) {
  double s[4] = {0, 0, 0, 0};
  int64_t i = 0;
#ifdef __SSE2__
  if constexpr (std::is_same_v<T, float>) {  // as finite_sums: the same lanes, the same operations in order
    __m128d s01 = _mm_setzero_pd(), s23 = s01, m = _mm_set1_pd(mean);
    for (; i + 4 <= n; i += 4) {
      __m128 x = _mm_loadu_ps(data + i);
      __m128d d01 = _mm_sub_pd(_mm_cvtps_pd(x), m), d23 = _mm_sub_pd(_mm_cvtps_pd(_mm_movehl_ps(x, x)), m);
      s01 = _mm_add_pd(s01, _mm_mul_pd(d01, d01));
      s23 = _mm_add_pd(s23, _mm_mul_pd(d23, d23));
    }
    _mm_storeu_pd(s, s01);
    _mm_storeu_pd(s + 2, s23);
  }
#endif
  for (; i + 4 <= n; i += 4) {
    for (int k = 0; k < 4; ++k) {
      double d = static_cast<double>(data[i + k]) - mean;
      s[k] += d * d;
    }
  }
  for (; i < n; ++i) {
    double d = static_cast<double>(data[i]) - mean;
    s[0] += d * d;
  }
  return (s[0] + s[1]) + (s[2] + s[3]);
}

constexpr int64_t kInOrder = 64;  // up to this many elements, summed one by one, as values.py does

template <typename T>
PyObject* stats(const T* data, int64_t n) {
  int64_t nan_count = 0, inf_count = 0, m = 0;
  double total = 0, lo = 0, hi = 0;
  bool fast = n > kInOrder && finite_sums(data, n, &total, &lo, &hi);
  if (fast) {
    m = n;
  } else {
    total = lo = hi = 0;  // what finite_sums left: summed again below, one by one
  }
  for (int64_t i = 0; i < n && !fast; ++i) {
    double x = static_cast<double>(data[i]);
    if (std::isnan(x)) {
      ++nan_count;
    } else if (std::isinf(x)) {
      ++inf_count;
    } else {
      if (m == 0 || x < lo) lo = x;
      if (m == 0 || x > hi) hi = x;
      total += x;
      ++m;
    }
  }
  // the keys in the model's order (app/models.py Stats), made once
  static PyObject* keys[] = {
      PyUnicode_InternFromString("numel"), PyUnicode_InternFromString("min"),
      PyUnicode_InternFromString("max"), PyUnicode_InternFromString("mean"),
      PyUnicode_InternFromString("std"), PyUnicode_InternFromString("nan_count"),
      PyUnicode_InternFromString("inf_count")};
  PyObject* vals[7];
  vals[0] = PyLong_FromLongLong(n);
  if (m == 0) {
    for (int k = 1; k < 5; ++k) vals[k] = (Py_INCREF(Py_None), Py_None);
  } else {
    double mean = total / static_cast<double>(m);
    double sq = 0;
    if (fast) {
      sq = squared_deviations(data, n, mean);
    } else {
      for (int64_t i = 0; i < n; ++i) {
        double x = static_cast<double>(data[i]);
        if (std::isfinite(x)) sq += (x - mean) * (x - mean);
      }
    }
    vals[1] = written_double<T>(lo);
    vals[2] = written_double<T>(hi);
    vals[3] = written_double<T>(mean);
    vals[4] = written_double<T>(m > 1 ? std::sqrt(sq / static_cast<double>(m - 1)) : 0.0);
  }
  vals[5] = PyLong_FromLongLong(nan_count);
  vals[6] = PyLong_FromLongLong(inf_count);
  PyObject* s = PyDict_New();
  for (int k = 0; k < 7; ++k) {
    if (s != nullptr && vals[k] != nullptr && PyDict_SetItem(s, keys[k], vals[k]) != 0) Py_CLEAR(s);
    Py_XDECREF(vals[k]);
  }
  if (s == nullptr) throw py::error_already_set();
  return s;
}

// How a value of one or more dimensions is written: as nested lists (neither set); as its JSON text
// in an orjson.Fragment (`fragment`: that class); or not yet (`unwritten`: values.Unwritten, given a
// copy of the tensor, which budget.fit writes with `texts` where the byte budget keeps it).
constexpr int64_t kUnwrittenMinElements = 32;  // fewer: written at once, as cheap as a copy, and a value budget.fit keeps

struct Writing {
  PyObject* fragment = nullptr;
  PyObject* unwritten = nullptr;
};

PyObject* unwritten_copy(const at::Tensor& c, PyObject* unwritten) {
  at::Tensor copy;
  {
    c10::AutoGradMode no_grad(false);  // a copy of the values, no autograd node
    copy = c.detach().clone();
  }
  PyObject* tensor = THPVariable_Wrap(copy);
  if (tensor == nullptr) throw py::error_already_set();
  PyObject* u = PyObject_CallOneArg(unwritten, tensor);
  Py_DECREF(tensor);
  if (u == nullptr) throw py::error_already_set();
  return u;
}

template <typename T>
void read_typed(const at::Tensor& c, int64_t max_elements, bool want_stats, PyObject** value, PyObject** st, Writing writing) {
  const T* data = c.const_data_ptr<T>();
  int64_t n = c.numel();
  if (n > max_elements) {
    *value = (Py_INCREF(Py_None), Py_None);
  } else if (writing.unwritten != nullptr && c.dim() > 0 && n >= kUnwrittenMinElements) {
    *value = unwritten_copy(c, writing.unwritten);
  } else if (writing.fragment != nullptr && c.dim() > 0) {  // a 0-d value stays a number (bindings.py labels constants by it)
    *value = json_value(data, c.sizes(), writing.fragment);
  } else {
    *value = nested(data, c.sizes(), 0);
  }
  if constexpr (std::is_floating_point_v<T> || std::is_same_v<T, c10::Half> || std::is_same_v<T, c10::BFloat16>) {
    if (want_stats || n > max_elements) {
      *st = stats(data, n);
      return;
    }
  }
  Py_INCREF(Py_None);
  *st = Py_None;
}

// (value, stats) as new references: stats for floating tensors when wanted, and always when the
// value is too big to send. A value of one or more dimensions as `writing` says.
void read(const at::Tensor& t, int64_t max_elements, bool want_stats, PyObject** value, PyObject** st, Writing writing = {}) {
  at::Tensor c = t.is_contiguous() ? t : t.contiguous();
  switch (c.scalar_type()) {
    case at::kFloat: read_typed<float>(c, max_elements, want_stats, value, st, writing); break;
    case at::kDouble: read_typed<double>(c, max_elements, want_stats, value, st, writing); break;
    case at::kHalf: read_typed<c10::Half>(c, max_elements, want_stats, value, st, writing); break;
    case at::kBFloat16: read_typed<c10::BFloat16>(c, max_elements, want_stats, value, st, writing); break;
    case at::kLong: read_typed<int64_t>(c, max_elements, want_stats, value, st, writing); break;
    case at::kInt: read_typed<int32_t>(c, max_elements, want_stats, value, st, writing); break;
    case at::kShort: read_typed<int16_t>(c, max_elements, want_stats, value, st, writing); break;
    case at::kChar: read_typed<int8_t>(c, max_elements, want_stats, value, st, writing); break;
    case at::kByte: read_typed<uint8_t>(c, max_elements, want_stats, value, st, writing); break;
    case at::kBool: read_typed<bool>(c, max_elements, want_stats, value, st, writing); break;
    default: throw std::logic_error("unreadable dtype");  // readable() keeps these out
  }
}

py::tuple read_pair(const at::Tensor& t, int64_t max_elements, bool want_stats) {
  PyObject* value = nullptr;
  PyObject* st = nullptr;
  read(t, max_elements, want_stats, &value, &st);
  PyObject* pair = PyTuple_New(2);  // steals both
  PyTuple_SET_ITEM(pair, 0, value);
  PyTuple_SET_ITEM(pair, 1, st);
  return py::reinterpret_steal<py::tuple>(pair);
}

// -- backward steps ---------------------------------------------------------------------------

struct Step {
  int64_t node;
  variable_list grad_inputs;   // what the node passed to each of its inputs
  variable_list grad_outputs;  // the gradient w.r.t. its output(s)
};

struct Log {
  std::mutex mutex;
  std::vector<Step> steps;
};

struct Record : torch::autograd::FunctionPostHook {
  std::shared_ptr<Log> log;
  int64_t node;
  Record(std::shared_ptr<Log> l, int64_t n) : log(std::move(l)), node(n) {}
  variable_list operator()(const variable_list& grad_inputs, const variable_list& grad_outputs) override {
    std::lock_guard<std::mutex> lock(log->mutex);
    log->steps.push_back(Step{node, grad_inputs, grad_outputs});
    return grad_inputs;
  }
};

c10::intrusive_ptr<Node> node_of(PyObject* fn) {
  if (torch::autograd::THPCppFunction_Check(fn)) {
    return reinterpret_cast<torch::autograd::THPCppFunction*>(fn)->cdata;
  }
  if (THPFunction_Check(fn)) {  // a custom autograd.Function's backward node
    return reinterpret_cast<THPFunction*>(fn)->cdata;
  }
  throw py::type_error("not an autograd node");
}

Writing writing_of(const py::object& fragment, const py::object& unwritten) {
  return Writing{fragment.is_none() ? nullptr : fragment.ptr(), unwritten.is_none() ? nullptr : unwritten.ptr()};
}

// The JSON text of each tensor (one or more dimensions, contiguous: an Unwritten's copy) in a `fragment`.
py::list texts(const py::list& tensors, const py::object& fragment) {
  py::list out(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    PyObject* obj = tensors[i].ptr();
    if (!THPVariable_Check(obj)) throw py::type_error("not a tensor");
    const at::Tensor& t = THPVariable_Unpack(obj);
    if (!t.is_contiguous() || t.dim() == 0 || !readable(t)) throw py::value_error("texts: a contiguous tensor of one or more dimensions");
    PyObject* text = nullptr;
    PyObject* unused = nullptr;
    read(t, t.numel(), false, &text, &unused, Writing{fragment.ptr(), nullptr});
    Py_XDECREF(unused);
    PyList_SET_ITEM(out.ptr(), i, text);
  }
  return out;
}

// Trace.tensors entries for the gradients of one take: each tensor written once, by TensorImpl and
// by content (dtype, shape and bytes).
class Entries {
 public:
  Entries(const py::list& tensors, int64_t max_elements, const py::object& dtype_name, Writing writing)
      : tensors_(tensors), max_elements_(max_elements), dtype_name_(dtype_name), writing_(writing) {}

  // The entry's index, or None for an undefined gradient. Without want_value, a small entry gets
  // its stats only (the trace is past its byte budget); a later want_value writes its value.
  py::object index(const at::Tensor& t, bool want_value) {
    if (!t.defined()) return py::none();
    auto [it, fresh] = by_impl_.try_emplace(t.unsafeGetTensorImpl());
    if (fresh) {
      it->second = add(t, want_value);
    } else if (want_value) {
      write_value(it->second);
    }
    return py::int_(it->second);
  }

  bool handed_back = false;

 private:
  void write_value(Py_ssize_t index) {  // a stats-only entry's value, now wanted
    auto it = stats_only_.find(index);
    if (it == stats_only_.end()) return;
    static PyObject* k_value = PyUnicode_InternFromString("value");
    PyObject* v = nullptr;
    PyObject* s = nullptr;
    read(it->second, max_elements_, false, &v, &s, writing_);
    py::object value = py::reinterpret_steal<py::object>(v);
    py::object st = py::reinterpret_steal<py::object>(s);
    if (PyDict_SetItem(PyList_GET_ITEM(tensors_.ptr(), index), k_value, value.ptr()) != 0) throw py::error_already_set();
    stats_only_.erase(it);
  }

  Py_ssize_t add(const at::Tensor& t, bool want_value) {
    static PyObject* keys[] = {PyUnicode_InternFromString("shape"), PyUnicode_InternFromString("dtype"),
                               PyUnicode_InternFromString("value"), PyUnicode_InternFromString("stats")};
    bool read_here = readable(t);
    at::Tensor c;
    std::string_view bytes;
    size_t hash = 0;
    if (read_here && t.numel() <= max_elements_) {  // small: the same content is the same entry
      c = t.is_contiguous() ? t : t.contiguous();
      bytes = std::string_view(static_cast<const char*>(c.const_data_ptr()), c.nbytes());
      hash = std::hash<std::string_view>{}(bytes) ^ (static_cast<size_t>(c.scalar_type()) * 0x9E3779B97F4A7C15ULL);
      auto range = by_content_.equal_range(hash);
      for (auto it = range.first; it != range.second; ++it) {
        const at::Tensor& other = kept_[it->second.first];
        if (other.scalar_type() == c.scalar_type() && other.sizes() == c.sizes() &&
            std::memcmp(other.const_data_ptr(), bytes.data(), bytes.size()) == 0) {
          if (want_value) write_value(it->second.second);
          return it->second.second;
        }
      }
    }
    py::object value, st = py::none();
    bool stats_only = read_here && !want_value && c.defined() && c.is_floating_point();
    if (read_here) {
      PyObject* v = nullptr;
      PyObject* s = nullptr;
      // stats too (for a floating tensor): run.py keeps them aside where the value is written
      read(t, stats_only ? -1 : max_elements_, true, &v, &s, writing_);
      value = py::reinterpret_steal<py::object>(v);
      st = py::reinterpret_steal<py::object>(s);
    } else {
      handed_back = true;
      value = py::reinterpret_steal<py::object>(THPVariable_Wrap(t));
    }
    py::list shape = shape_of(t);
    PyObject* entry = PyDict_New();
    if (entry == nullptr) throw py::error_already_set();
    py::object owned = py::reinterpret_steal<py::object>(entry);
    PyObject* items[] = {shape.ptr(), dtype(t).ptr(), value.ptr(), st.ptr()};
    for (int k = 0; k < 4; ++k) {
      if (PyDict_SetItem(entry, keys[k], items[k]) != 0) throw py::error_already_set();
    }
    Py_ssize_t index = PyList_GET_SIZE(tensors_.ptr());
    if (PyList_Append(tensors_.ptr(), entry) != 0) throw py::error_already_set();
    if (c.defined()) {
      by_content_.emplace(hash, std::make_pair(kept_.size(), index));
      kept_.push_back(c);
      if (stats_only) stats_only_.emplace(index, c);
    }
    return index;
  }

  py::object dtype(const at::Tensor& t) {  // values.dtype_name(t.dtype), cached
    auto it = dtypes_.find(t.scalar_type());
    if (it == dtypes_.end()) {
      py::object tensor = py::reinterpret_steal<py::object>(THPVariable_Wrap(t));
      it = dtypes_.emplace(t.scalar_type(), dtype_name_(tensor.attr("dtype"))).first;
    }
    return it->second;
  }

  py::list tensors_;
  int64_t max_elements_;
  py::object dtype_name_;
  Writing writing_;  // the classes it names are the caller's, held while this lives
  std::unordered_map<const void*, Py_ssize_t> by_impl_;
  std::unordered_multimap<size_t, std::pair<size_t, Py_ssize_t>> by_content_;  // hash -> (kept_ index, entry)
  std::vector<at::Tensor> kept_;  // the contents compared, alive for the take
  std::unordered_map<Py_ssize_t, at::Tensor> stats_only_;  // entry -> its tensor, whose value was not read
  std::unordered_map<at::ScalarType, py::object> dtypes_;
};

class Steps {
 public:
  // A hook, until remove(), on each root and every node below it that the graph knows: `by_fn`
  // maps id(grad_fn) to the node's id, as in graph.py. Walks the nodes' own edges.
  void add_below(const py::list& roots, const py::dict& by_fn) {
    std::vector<std::pair<Node*, PyObject*>> stack;  // (node, its id)
    std::unordered_set<Node*> seen;
    auto known = [&](Node* node, PyObject* pyobj) {
      if (pyobj == nullptr || seen.count(node)) return;
      py::object key = py::reinterpret_steal<py::object>(PyLong_FromVoidPtr(pyobj));  // id(grad_fn)
      PyObject* nid = PyDict_GetItemWithError(by_fn.ptr(), key.ptr());
      if (nid == nullptr) {
        if (PyErr_Occurred()) throw py::error_already_set();
        return;  // not in the graph: neither it nor what is below it through it
      }
      seen.insert(node);
      stack.emplace_back(node, nid);
    };
    for (const py::handle& root : roots) known(node_of(root.ptr()).get(), root.ptr());
    while (!stack.empty()) {
      auto [node, nid] = stack.back();
      stack.pop_back();
      int64_t id = PyLong_AsLongLong(nid);
      if (id == -1 && PyErr_Occurred()) throw py::error_already_set();
      uintptr_t key = node->add_post_hook(std::make_unique<Record>(log_, id));
      hooked_.emplace_back(c10::intrusive_ptr<Node>::unsafe_reclaim_from_nonowning(node), key);
      for (const torch::autograd::Edge& edge : node->next_edges()) {
        if (edge.is_valid()) known(edge.function.get(), edge.function->pyobj_slot()->load_pyobj());
      }
    }
  }

  void remove() {
    for (auto& [node, key] : hooked_) node->del_post_hook(key);
    hooked_.clear();
  }

  // The steps so far, in the order the engine ran them, read and emptied: [step dicts with doc.step's
  // keys], whose gradients are indices into `tensors` (Trace.tensors: the entries this appends, with
  // TensorData's keys), and whether an entry's value was handed back: a gradient this file cannot
  // read has the tensor itself as its value, for values.py. A tensor met twice (one node's output
  // gradient is the next one's input gradient) is one entry, and so are two of the same dtype,
  // shape and bytes.
  // values_for: None (every entry gets its value), or the node ids whose steps' `grad` entries do
  // (a leaf's gradient, once the trace is past its byte budget); the others get their stats only.
  // fragment: orjson.Fragment, to write values as JSON text (json_value), or None: nested lists;
  // unwritten: values.Unwritten, to leave them unwritten (a copy each), or None.
  py::tuple take(const py::list& tensors, int64_t max_elements, const py::object& dtype_name, const py::object& values_for,
                 const py::object& fragment, const py::object& unwritten) {
    std::vector<Step> steps;
    {
      std::lock_guard<std::mutex> lock(log_->mutex);
      steps.swap(log_->steps);
    }
    static PyObject* keys[] = {PyUnicode_InternFromString("node"), PyUnicode_InternFromString("grad"),
                               PyUnicode_InternFromString("grad_inputs")};
    Entries entries(tensors, max_elements, dtype_name, writing_of(fragment, unwritten));
    bool all_values = values_for.is_none();
    auto refs = [&](const variable_list& grads, bool want_values) -> py::object {
      PyObject* list = PyList_New(static_cast<Py_ssize_t>(grads.size()));
      if (list == nullptr) throw py::error_already_set();
      py::object owned = py::reinterpret_steal<py::object>(list);
      for (size_t k = 0; k < grads.size(); ++k) PyList_SET_ITEM(list, k, entries.index(grads[k], want_values).release().ptr());
      return owned;
    };
    py::list out(steps.size());
    for (size_t i = 0; i < steps.size(); ++i) {
      const Step& s = steps[i];
      PyObject* step = PyDict_New();
      if (step == nullptr) throw py::error_already_set();
      py::object owned = py::reinterpret_steal<py::object>(step);
      py::object node = py::int_(s.node);
      int found = all_values ? 1 : PySequence_Contains(values_for.ptr(), node.ptr());
      if (found < 0) throw py::error_already_set();
      py::object grad = refs(s.grad_outputs, found == 1);
      py::object inputs = refs(s.grad_inputs, all_values);
      PyObject* items[] = {node.ptr(), grad.ptr(), inputs.ptr()};
      for (int k = 0; k < 3; ++k) {
        if (PyDict_SetItem(step, keys[k], items[k]) != 0) throw py::error_already_set();
      }
      PyList_SET_ITEM(out.ptr(), i, owned.release().ptr());
    }
    return py::make_tuple(out, entries.handed_back);
  }

  ~Steps() { remove(); }

 private:
  std::shared_ptr<Log> log_ = std::make_shared<Log>();
  std::vector<std::pair<c10::intrusive_ptr<Node>, uintptr_t>> hooked_;
};

// [(value, stats) or the tensor itself where this file cannot read it], one per tensor.
py::list encode(const py::list& tensors, const py::list& want_stats, int64_t max_elements) {
  py::list out(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    PyObject* obj = tensors[i].ptr();
    if (!THPVariable_Check(obj)) throw py::type_error("not a tensor");
    const at::Tensor& t = THPVariable_Unpack(obj);
    bool stats_wanted = PyList_GET_ITEM(want_stats.ptr(), i) == Py_True;
    out[i] = readable(t) ? py::object(read_pair(t, max_elements, stats_wanted)) : py::reinterpret_borrow<py::object>(obj);
  }
  return out;
}

// -- forward ops ------------------------------------------------------------------------------

PyObject* interned(const char* s) { return PyUnicode_InternFromString(s); }

// graph.Graph._add_usual_op: an operation's new grad_fn whose inputs the graph knows.
// Writes the node, its event and its edges into the graph's own containers, as _add_usual_op does.
class Ops {
 public:
  // The node and event templates and dtype_name come from graph.py: this module imports no module of
  // the package, so it works under whatever name the package is installed (app, gradwalk).
  Ops(const py::object& graph, const py::object& op_node, const py::object& node_event, const py::object& dtype_name) {
    py::object limits = graph.attr("limits");
    max_nodes_ = limits.attr("max_nodes").cast<Py_ssize_t>();
    max_events_ = limits.attr("max_events").cast<Py_ssize_t>();
    nodes_ = graph.attr("nodes");
    events_ = graph.attr("events");
    edges_ = graph.attr("edges");
    edge_keys_ = graph.attr("_edge_keys");
    by_fn_ = graph.attr("by_fn");
    keep_ = graph.attr("_keep");
    op_node_ = op_node;
    node_event_ = node_event;
    dtype_name_ = dtype_name;
  }

  // (node, whether a slot has no autograd input) or None: then graph.py's own path takes it.
  py::object add(const py::handle& f, const py::handle& output, const py::handle& line) {
    if (!THPVariable_Check(output.ptr()) || !(torch::autograd::THPCppFunction_Check(f.ptr()) || THPFunction_Check(f.ptr()))) {
      return py::none();
    }
    // f.next_functions without building it: each input node's Python object, if it has one (every
    // node the graph knows has: graph.py holds them), is what `id(child)` names in graph.by_fn.
    c10::intrusive_ptr<Node> fn = node_of(f.ptr());
    // one output of several (the call returned one of them): graph.py lists its outputs. (Node's
    // num_outputs() counts its next edges, the forward op's inputs: not a test of this.)
    if (THPVariable_Unpack(output.ptr()).output_nr() != 0) return py::none();
    const torch::autograd::edge_list& next = fn->next_edges();
    std::vector<PyObject*> inputs(next.size(), nullptr);  // borrowed node ids
    bool free = false;
    for (size_t i = 0; i < next.size(); ++i) {
      if (!next[i].is_valid()) {
        free = true;
        continue;
      }
      PyObject* cid = known(next[i].function);
      if (cid == nullptr) cid = hidden(next[i].function, line, 0);  // an input the program never held
      if (cid == nullptr) return py::none();  // one graph.py walks: a new leaf, a custom Function's...
      inputs[i] = cid;
    }
    if (full()) return py::none();  // truncates there
    const at::Tensor& t = THPVariable_Unpack(output.ptr());
    py::object node = record(f.ptr(), line, shape_of(t), dtype_name(t.scalar_type(), output), next, inputs);
    return py::make_tuple(node, free);
  }

 private:
  bool full() const {
    return PyList_GET_SIZE(nodes_.ptr()) >= max_nodes_ || PyList_GET_SIZE(events_.ptr()) >= max_events_;
  }

  // The node id graph.by_fn has for `node` (borrowed), or nullptr.
  PyObject* known(const c10::intrusive_ptr<Node>& node) {
    PyObject* obj = node->pyobj_slot()->load_pyobj();  // every node the graph knows has one: graph.py holds them
    if (obj == nullptr) return nullptr;
    py::object key = py::reinterpret_steal<py::object>(PyLong_FromVoidPtr(obj));  // id(grad_fn)
    PyObject* cid = PyDict_GetItemWithError(by_fn_.ptr(), key.ptr());
    if (cid == nullptr && PyErr_Occurred()) throw py::error_already_set();
    return cid;
  }

  // graph.py's walk for an op the program never held (nn.Linear's TBackward0 and AddmmBackward0):
  // its unseen inputs first, in slot order, then the node, shaped by its output's metadata, as
  // graph._op_node with _hidden_fields makes it; its id (borrowed from by_fn). nullptr where graph.py
  // must walk it (a new leaf, a custom Function, several outputs, symbolic or nested shapes, a dtype
  // not named yet, deep), with the nodes made so far left in place: graph.py's walk, which visits in
  // the same order, finds them known.
  PyObject* hidden(const c10::intrusive_ptr<Node>& node, const py::handle& line, int depth) {
    if (depth > kHiddenDepth || full() || dynamic_cast<torch::autograd::AccumulateGrad*>(node.get()) != nullptr) return nullptr;
    if (node->num_inputs() != 1) return nullptr;
    const torch::autograd::InputMetadata& meta = node->input_metadata(0);
    if (meta.is_nested_tensor() || meta.is_tensor_subclass()) return nullptr;
    auto dtype = dtype_names_.find(c10::typeMetaToScalarType(meta.dtype()));
    if (dtype == dtype_names_.end()) return nullptr;
    py::list shape;
    for (const c10::SymInt& size : meta.shape_as_dim_vector()) {
      std::optional<int64_t> n = size.maybe_as_int();
      if (!n) return nullptr;
      shape.append(py::int_(*n));
    }
    const torch::autograd::edge_list& next = node->next_edges();
    std::vector<PyObject*> inputs(next.size(), nullptr);
    for (size_t i = 0; i < next.size(); ++i) {
      if (!next[i].is_valid()) continue;
      PyObject* cid = known(next[i].function);
      if (cid == nullptr) cid = hidden(next[i].function, line, depth + 1);
      if (cid == nullptr) return nullptr;
      inputs[i] = cid;
    }
    if (full()) return nullptr;
    py::object f = py::reinterpret_steal<py::object>(torch::autograd::functionToPyObject(node));
    if (!f || !torch::autograd::THPCppFunction_Check(f.ptr())) return nullptr;
    record(f.ptr(), line, shape, dtype->second.ptr(), next, inputs);
    return known(node);
  }

  // A new node: a copy of graph.op_node with its id, op, line, shape and dtype; its by_fn entry, its
  // node event and its edges (graph._add and graph.edge, for a node whose inputs are all known).
  py::object record(PyObject* f, const py::handle& line, const py::list& shape, PyObject* dtype,
                    const torch::autograd::edge_list& next, const std::vector<PyObject*>& inputs) {
    static PyObject* k_id = interned("id");
    static PyObject* k_op = interned("op");
    static PyObject* k_label = interned("label");
    static PyObject* k_line = interned("line");
    static PyObject* k_shape = interned("shape");
    static PyObject* k_dtype = interned("dtype");
    static PyObject* k_node = interned("node");
    static PyObject* k_names = interned("names");
    py::object id = py::reinterpret_steal<py::object>(PyLong_FromSsize_t(PyList_GET_SIZE(nodes_.ptr())));
    py::object node = py::reinterpret_steal<py::object>(PyDict_Copy(op_node_.ptr()));
    PyObject* name = op_name(Py_TYPE(f));
    set(node, k_id, id.ptr());
    set(node, k_op, name);
    set(node, k_label, name);  // label_all renames it if the program names it
    set(node, k_line, line.ptr());
    set(node, k_shape, shape.ptr());
    set(node, k_dtype, dtype);
    py::list names;  // its own list: the template's is shared
    set(node, k_names, names.ptr());
    append(nodes_, node.ptr());
    py::object fn_key = py::reinterpret_steal<py::object>(PyLong_FromVoidPtr(f));
    if (PyDict_SetItem(by_fn_.ptr(), fn_key.ptr(), id.ptr()) != 0) throw py::error_already_set();
    append(keep_, f);
    py::object event = py::reinterpret_steal<py::object>(PyDict_Copy(node_event_.ptr()));
    set(event, k_line, line.ptr());
    set(event, k_node, id.ptr());
    append(events_, event.ptr());
    add_edges(next, inputs, id);
    return node;
  }

  // graph.edge for each input: (source, target, slot) once, with the input's output index.
  void add_edges(const torch::autograd::edge_list& next, const std::vector<PyObject*>& inputs, const py::object& id) {
    static PyObject* k_source = interned("source");
    static PyObject* k_target = interned("target");
    static PyObject* k_slot = interned("slot");
    static PyObject* k_output = interned("output");
    for (size_t i = 0; i < next.size(); ++i) {
      PyObject* cid = inputs[i];
      if (cid == nullptr) continue;
      py::object slot = py::reinterpret_steal<py::object>(PyLong_FromSsize_t(static_cast<Py_ssize_t>(i)));
      py::object edge_key = py::reinterpret_steal<py::object>(PyTuple_Pack(3, cid, id.ptr(), slot.ptr()));
      if (!edge_key) throw py::error_already_set();
      int seen = PySet_Contains(edge_keys_.ptr(), edge_key.ptr());
      if (seen < 0 || (seen == 0 && PySet_Add(edge_keys_.ptr(), edge_key.ptr()) != 0)) throw py::error_already_set();
      if (seen == 1) continue;
      py::object edge = py::reinterpret_steal<py::object>(PyDict_New());
      set(edge, k_source, cid);
      set(edge, k_target, id.ptr());
      set(edge, k_slot, slot.ptr());
      py::object output = py::reinterpret_steal<py::object>(PyLong_FromLong(next[i].input_nr));
      set(edge, k_output, output.ptr());
      append(edges_, edge.ptr());
    }
  }

  static void set(const py::object& dict, PyObject* key, PyObject* value) {
    if (!dict || PyDict_SetItem(dict.ptr(), key, value) != 0) throw py::error_already_set();
  }
  static void append(const py::object& list, PyObject* item) {
    if (PyList_Append(list.ptr(), item) != 0) throw py::error_already_set();
  }
  PyObject* op_name(PyTypeObject* type) {  // type(f).__name__, borrowed from the cache
    auto it = op_names_.find(type);
    if (it == op_names_.end()) {
      py::object name = py::reinterpret_borrow<py::object>(reinterpret_cast<PyObject*>(type)).attr("__name__");
      it = op_names_.emplace(type, name).first;
    }
    return it->second.ptr();
  }
  PyObject* dtype_name(at::ScalarType type, const py::handle& output) {  // values.dtype_name, cached
    auto it = dtype_names_.find(type);
    if (it == dtype_names_.end()) it = dtype_names_.emplace(type, dtype_name_(output.attr("dtype"))).first;
    return it->second.ptr();
  }

  static constexpr int kHiddenDepth = 8;  // ops the program never held, below one it holds: deeper, graph.py walks
  Py_ssize_t max_nodes_ = 0, max_events_ = 0;
  py::object nodes_, events_, edges_, edge_keys_, by_fn_, keep_;
  py::object op_node_, node_event_, dtype_name_;
  std::unordered_map<PyTypeObject*, py::object> op_names_;  // types live as long as the process
  std::unordered_map<at::ScalarType, py::object> dtype_names_;
};

// values.Deferred's flush: held is [(tensor, its version then, into, key, stats_key or None)];
// into[key] = the value and into[stats_key] = its stats, or None for a tensor whose version moved
// (changed behind the tracer's back: no value rather than a wrong one). Returns the entries this
// file does not read, for values.py. fragment, unwritten: as in Steps.take.
py::list flush(const py::list& held, int64_t max_elements, const py::object& fragment, const py::object& unwritten) {
  Writing writing = writing_of(fragment, unwritten);
  py::list left;
  for (const py::handle& entry : held) {
    PyObject* e = entry.ptr();
    if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 5 || !THPVariable_Check(PyTuple_GET_ITEM(e, 0))) {
      throw py::type_error("held: (tensor, version, into, key, stats_key)");
    }
    const at::Tensor& t = THPVariable_Unpack(PyTuple_GET_ITEM(e, 0));
    int64_t version = PyLong_AsLongLong(PyTuple_GET_ITEM(e, 1));
    if (version == -1 && PyErr_Occurred()) throw py::error_already_set();
    PyObject* into = PyTuple_GET_ITEM(e, 2);
    PyObject* key = PyTuple_GET_ITEM(e, 3);
    PyObject* stats_key = PyTuple_GET_ITEM(e, 4);
    bool want_stats = stats_key != Py_None;
    PyObject* value = Py_None;
    PyObject* st = Py_None;
    if (static_cast<int64_t>(t._version()) != version) {
      Py_INCREF(value);
      Py_INCREF(st);
    } else if (!readable(t)) {
      left.append(entry);
      continue;
    } else {
      read(t, max_elements, want_stats, &value, &st, writing);
    }
    py::object owned_value = py::reinterpret_steal<py::object>(value);
    py::object owned_stats = py::reinterpret_steal<py::object>(st);
    if (PyObject_SetItem(into, key, value) != 0) throw py::error_already_set();
    if (want_stats && PyObject_SetItem(into, stats_key, st) != 0) throw py::error_already_set();
  }
  return left;
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "gradwalk's per-node tracing costs in C++ (see native.cpp)";
  py::class_<Steps>(m, "Steps")
      .def(py::init<>())
      .def("add_below", &Steps::add_below)
      .def("remove", &Steps::remove)
      .def("take", &Steps::take, py::arg("tensors"), py::arg("max_elements"), py::arg("dtype_name"), py::arg("values_for") = py::none(),
           py::arg("fragment") = py::none(), py::arg("unwritten") = py::none());
  py::class_<Ops>(m, "Ops")
      .def(py::init<const py::object&, const py::object&, const py::object&, const py::object&>())
      .def("add", &Ops::add);
  m.def("encode", &encode);
  m.def("flush", &flush, py::arg("held"), py::arg("max_elements"), py::arg("fragment") = py::none(), py::arg("unwritten") = py::none());
  m.def("texts", &texts);
}
