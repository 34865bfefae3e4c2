// The tracer's two per-node costs, done without a Python call per node:
//   Steps:         one C++ hook per autograd node for the length of a backward pass, recording in
//                  the engine's own order which node ran and the gradients it got and gave;
//   encode, flush: tensors -> JSON-ready values (nested lists, NaN/Inf as strings) and stats,
//                  flush writing them where values.Deferred was asked to.
// Built by `make` (scripts/build_native.py). app/tracer/values.py holds the same rules in Python,
// the reference the tests compare this against, and the path for what this file does not read
// (complex, quantized, sparse, non-CPU tensors): for those it hands the tensor back.

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/python_cpp_function.h>
#include <torch/csrc/autograd/python_function.h>
#include <torch/csrc/autograd/python_variable.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <mutex>
#include <unordered_map>

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

PyObject* number(double x) { return std::isfinite(x) ? PyFloat_FromDouble(x) : special(x); }

bool readable(const at::Tensor& t) {
  if (!t.defined() || t.layout() != at::kStrided || !t.device().is_cpu() || t.is_neg() || t.is_conj()) {
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

// One element as Python sees it after tolist(), NaN/Inf spelled out.
template <typename T>
PyObject* element(T x) {
  if constexpr (std::is_same_v<T, bool>) {
    return PyBool_FromLong(x);
  } else if constexpr (std::is_integral_v<T>) {
    return PyLong_FromLongLong(static_cast<long long>(x));
  } else {
    return number(static_cast<double>(x));
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

// {numel, min, max, mean, std, nan_count, inf_count} over the finite elements, as values.py does:
// in double, summed in order, std with Bessel's correction.
template <typename T>
PyObject* stats(const T* data, int64_t n) {
  int64_t nan_count = 0, inf_count = 0, m = 0;
  double total = 0, lo = 0, hi = 0;
  for (int64_t i = 0; i < n; ++i) {
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
    for (int64_t i = 0; i < n; ++i) {
      double x = static_cast<double>(data[i]);
      if (std::isfinite(x)) sq += (x - mean) * (x - mean);
    }
    vals[1] = PyFloat_FromDouble(lo);
    vals[2] = PyFloat_FromDouble(hi);
    vals[3] = number(mean);
    vals[4] = number(m > 1 ? std::sqrt(sq / static_cast<double>(m - 1)) : 0.0);
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

template <typename T>
void read_typed(const at::Tensor& c, int64_t max_elements, bool want_stats, PyObject** value, PyObject** st) {
  const T* data = c.const_data_ptr<T>();
  int64_t n = c.numel();
  *value = n > max_elements ? (Py_INCREF(Py_None), Py_None) : nested(data, c.sizes(), 0);
  if constexpr (std::is_floating_point_v<T> || std::is_same_v<T, c10::Half> || std::is_same_v<T, c10::BFloat16>) {
    if (want_stats || n > max_elements) {
      *st = stats(data, n);
      return;
    }
  }
  Py_INCREF(Py_None);
  *st = Py_None;
}

// (value, stats): stats for floating tensors when wanted, and always when the value is too big to send.
// (value, stats) as new references: stats for floating tensors when wanted, and always when the
// value is too big to send.
void read(const at::Tensor& t, int64_t max_elements, bool want_stats, PyObject** value, PyObject** st) {
  at::Tensor c = t.is_contiguous() ? t : t.contiguous();
  switch (c.scalar_type()) {
    case at::kFloat: read_typed<float>(c, max_elements, want_stats, value, st); break;
    case at::kDouble: read_typed<double>(c, max_elements, want_stats, value, st); break;
    case at::kHalf: read_typed<c10::Half>(c, max_elements, want_stats, value, st); break;
    case at::kBFloat16: read_typed<c10::BFloat16>(c, max_elements, want_stats, value, st); break;
    case at::kLong: read_typed<int64_t>(c, max_elements, want_stats, value, st); break;
    case at::kInt: read_typed<int32_t>(c, max_elements, want_stats, value, st); break;
    case at::kShort: read_typed<int16_t>(c, max_elements, want_stats, value, st); break;
    case at::kChar: read_typed<int8_t>(c, max_elements, want_stats, value, st); break;
    case at::kByte: read_typed<uint8_t>(c, max_elements, want_stats, value, st); break;
    case at::kBool: read_typed<bool>(c, max_elements, want_stats, value, st); break;
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

class Steps {
 public:
  // A hook on each node (grad_fns[i] is recorded as ids[i]) until remove().
  void add(const py::list& grad_fns, const py::list& ids) {
    if (grad_fns.size() != ids.size()) throw py::value_error("one id per node");
    hooked_.reserve(hooked_.size() + grad_fns.size());
    for (size_t i = 0; i < grad_fns.size(); ++i) {
      c10::intrusive_ptr<Node> node = node_of(grad_fns[i].ptr());
      uintptr_t key = node->add_post_hook(std::make_unique<Record>(log_, ids[i].cast<int64_t>()));
      hooked_.emplace_back(std::move(node), key);
    }
  }

  void remove() {
    for (auto& [node, key] : hooked_) node->del_post_hook(key);
    hooked_.clear();
  }

  // The steps so far, in the order the engine ran them, read and emptied: ([step dicts with
  // doc.step's keys], any tensor handed back). A gradient this file cannot read is handed back as
  // the tensor itself, for values.py. A tensor met twice (one node's output gradient is the next
  // one's input gradient) is read once, and both places share the value.
  py::tuple take(int64_t max_elements) {
    std::vector<Step> steps;
    {
      std::lock_guard<std::mutex> lock(log_->mutex);
      steps.swap(log_->steps);
    }
    static PyObject* keys[] = {PyUnicode_InternFromString("node"), PyUnicode_InternFromString("grad"),
                               PyUnicode_InternFromString("grad_stats"), PyUnicode_InternFromString("grad_inputs")};
    struct Read {
      py::object value, stats;
    };
    std::unordered_map<const void*, Read> seen;  // TensorImpl -> its value
    bool handed_back = false;
    auto get = [&](const at::Tensor& t) -> const Read& {
      static const Read none{py::none(), py::none()};
      if (!t.defined()) return none;
      auto [it, fresh] = seen.try_emplace(t.unsafeGetTensorImpl());
      if (fresh) {
        if (readable(t)) {
          PyObject* value = nullptr;
          PyObject* st = nullptr;
          read(t, max_elements, false, &value, &st);
          it->second = Read{py::reinterpret_steal<py::object>(value), py::reinterpret_steal<py::object>(st)};
        } else {
          handed_back = true;
          it->second = Read{py::reinterpret_steal<py::object>(THPVariable_Wrap(t)), py::none()};
        }
      }
      return it->second;
    };
    auto values_of = [&](const variable_list& grads) -> py::object {
      PyObject* list = PyList_New(static_cast<Py_ssize_t>(grads.size()));
      if (list == nullptr) throw py::error_already_set();
      py::object owned = py::reinterpret_steal<py::object>(list);
      for (size_t k = 0; k < grads.size(); ++k) PyList_SET_ITEM(list, k, get(grads[k]).value.inc_ref().ptr());
      return owned;
    };
    py::list out(steps.size());
    for (size_t i = 0; i < steps.size(); ++i) {
      const Step& s = steps[i];
      py::object grad, grad_stats = py::none();
      if (s.grad_outputs.size() == 1 && s.grad_outputs[0].defined()) {
        const Read& r = get(s.grad_outputs[0]);
        grad = r.value;
        grad_stats = r.stats;  // only for a gradient too big to send
      } else {
        grad = values_of(s.grad_outputs);
      }
      PyObject* step = PyDict_New();
      if (step == nullptr) throw py::error_already_set();
      py::object owned = py::reinterpret_steal<py::object>(step);
      py::object node = py::int_(s.node);
      py::object inputs = values_of(s.grad_inputs);
      PyObject* items[] = {node.ptr(), grad.ptr(), grad_stats.ptr(), inputs.ptr()};
      for (int k = 0; k < 4; ++k) {
        if (PyDict_SetItem(step, keys[k], items[k]) != 0) throw py::error_already_set();
      }
      PyList_SET_ITEM(out.ptr(), i, owned.release().ptr());
    }
    return py::make_tuple(out, handed_back);
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

// values.Deferred's flush: held is [(tensor, its version then, into, key, stats_key or None)];
// into[key] = the value and into[stats_key] = its stats, or None for a tensor whose version moved
// (changed behind the tracer's back: no value rather than a wrong one). Returns the entries this
// file does not read, for values.py.
py::list flush(const py::list& held, int64_t max_elements) {
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
      read(t, max_elements, want_stats, &value, &st);
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
      .def("add", &Steps::add)
      .def("remove", &Steps::remove)
      .def("take", &Steps::take);
  m.def("encode", &encode);
  m.def("flush", &flush);
}
