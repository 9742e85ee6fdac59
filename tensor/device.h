// Memory on the accelerator. Without the CUDA backend these throw a clear error;
// tensor/device_cuda.cu implements them with a caching allocator when CUDA is built.
#pragma once
#include <cstddef>
#include <string>

#include "tensor/tensor.h"

namespace ahmsa {

// Built with CUDA and a usable GPU is present; otherwise `why` (when given) says what is missing: the
// backend, the driver (with the CUDA error, e.g. cudaErrorInsufficientDriver, 35) or a device.
bool cuda_available(std::string* why = nullptr);
void* device_alloc(size_t bytes);
void device_free(void* p);
void device_fill(float* p, size_t n, float v);
void device_copy(float* dst, Device dst_dev, const float* src, Device src_dev, size_t n);

}  // namespace ahmsa
