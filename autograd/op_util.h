// Helpers shared by the op implementations (not part of the public API).
#pragma once
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "tensor/tensor.h"

namespace ahmsa::detail {

// Throws unless every defined tensor is on the CPU (the CUDA backend dispatches before this).
inline void require_cpu(const char* op, std::initializer_list<const Tensor*> ts) {
  for (auto* t : ts)
    if (t->defined() && t->device() != Device::CPU)
      throw std::runtime_error(std::string(op) + ": no kernel for device " + device_name(t->device()));
}

// A contiguous version of t for reading (no history).
inline Tensor in(const Tensor& t) { return t.contiguous_nograd_(); }

[[noreturn]] inline void shape_fail(const std::string& op, const std::string& why) { throw ShapeError(op + ": " + why); }

}  // namespace ahmsa::detail
