// Helpers shared by the op implementations (not part of the public API).
#pragma once
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "autograd/autograd.h"
#include "tensor/tensor.h"

namespace ahmsa::detail {

// An op's argument as named in error messages ("x", "weight", ...).
using NamedArg = std::pair<const char*, const Tensor*>;

// The device every defined argument is on (CPU when none is defined). Arguments on different devices
// are an error naming the op and each argument's device: "conv2d: inputs on different devices: x on
// cuda, weight on cpu".
inline Device same_device(const char* op, std::initializer_list<NamedArg> args) {
  const Tensor* first = nullptr;
  bool mixed = false;
  for (auto& [role, t] : args)
    if (t->defined()) {
      if (!first) first = t;
      mixed |= t->device() != first->device();
    }
  if (mixed) {
    std::string msg = std::string(op) + ": inputs on different devices:";
    const char* sep = " ";
    for (auto& [role, t] : args)
      if (t->defined()) msg += sep + std::string(role) + " on " + device_name(t->device()), sep = ", ";
    throw std::runtime_error(msg);
  }
  return first ? first->device() : Device::CPU;
}

// t itself when contiguous, else a contiguous copy on t's device (no history): what kernels read.
inline Tensor contiguous_input(const Tensor& t) { return t.contiguous_nograd(); }

[[noreturn]] inline void shape_fail(const std::string& op, const std::string& why) {
  throw ShapeError(op + ": " + why);
}

}  // namespace ahmsa::detail
