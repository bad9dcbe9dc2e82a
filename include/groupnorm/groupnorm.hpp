// groupnorm — deterministic Group Normalization for CPUs (C++ API).
//
// A `plan` validates a problem once and fixes its schedule; `plan::run` then executes it any number of times,
// from any number of threads at once, inside a caller-supplied `tbb::task_arena` (or the caller's current
// arena). A run never allocates on the heap and never creates threads. Output bits do not depend on the
// arena's thread count, on scheduling, or on the SIMD path (see README "Determinism").
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <oneapi/tbb/task_arena.h>

namespace groupnorm {

// Memory layout of x / y. `nchw`: (batch, channels, spatial...) contiguous ("channels first", any spatial
// rank flattened to `spatial`). `nhwc`: (batch, spatial..., channels) contiguous ("channels last").
enum class layout : int { nchw = 0, nhwc = 1 };

// Storage type of x, y, residual and sum. gamma, beta, mean and rstd are always float; all arithmetic is fp32
// with statistics merged in double.
enum class dtype : int { f32 = 0, f16 = 1, bf16 = 2 };

// Activation applied after the affine transform, fused into the same pass. gelu is the erf form.
enum class activation : int { none = 0, relu = 1, silu = 2, gelu = 3 };

// Kernel family: an open set, named here for the families known when this header was written; a build may
// have others (known_isas(), parse_isa("name")). `automatic` picks the best the CPU supports, unless the
// environment variable GROUPNORM_ISA names a family (read once per process, at the first plan creation). All
// families produce bitwise identical results, on every architecture (avx2 and avx512 exist on x86-64, neon
// on aarch64, scalar everywhere).
enum class isa : int { automatic = 0, scalar = 1, avx2 = 2, avx512 = 3, neon = 4 };

// IEEE binary16 and bfloat16 storage, as raw bits (layout-compatible with uint16_t).
struct f16 {
  std::uint16_t bits;
};
struct bf16 {
  std::uint16_t bits;
};

// Every argument error: the message names the argument, its value and what was expected.
class invalid_argument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// What to normalize. x has batch * channels * spatial elements; channels are split into num_groups equal
// groups.
struct problem {
  std::size_t batch = 1;
  std::size_t channels = 0;
  std::size_t spatial = 1;  // product of the spatial dims (H*W, D*H*W, or 1)
  std::size_t num_groups = 0;
  float epsilon = 1e-5f;  // finite, >= 0
  layout memory_layout = layout::nchw;
  dtype data_type = dtype::f32;
  activation fused_activation = activation::none;
  bool residual = false;  // normalize x + residual (ONNX Runtime SkipGroupNorm form); the run must pass it
  isa kernel_isa = isa::automatic;
};

// Buffers of one run, typed by storage (float, f16 or bf16; must match problem::data_type).
// Empty spans mean "absent", whatever their data(): gamma = 1, beta = 0, no residual / sum / mean / rstd.
// y.data() == x.data() runs in place; any other overlap between outputs and inputs is an error.
// Fill it with designated initializers: tensors<float>{.x = x, .y = y, .gamma = gamma}.
template <class T>
struct tensors {
  std::span<const T> x{};
  std::span<T> y{};
  std::span<const float> gamma{};  // channels
  std::span<const float> beta{};   // channels
  std::span<const T> residual{};   // same size as x; required iff problem::residual
  std::span<T> sum{};       // optional, same size as x: receives x + residual (needs problem::residual)
  std::span<float> mean{};  // optional, batch * num_groups: per (sample, group) mean
  std::span<float> rstd{};  // optional, batch * num_groups: 1 / sqrt(var + epsilon)
};

// Buffers of one backward run (plan::run_backward; docs/backward.md), typed like tensors<T>. Empty spans mean
// "absent". At least one of dx, dgamma, dbeta must be given; dx.data() == dy.data() runs in place, any other
// overlap of an output with an input or another output is an error.
template <class T>
struct backward_tensors {
  std::span<const T> x{};          // the forward's input (of a residual forward: its sum x + residual)
  std::span<const T> dy{};         // gradient of the forward's output
  std::span<const float> gamma{};  // channels, or empty for 1
  std::span<const float> beta{};   // channels, or empty for 0 (read only with a fused activation)
  std::span<const float> mean{};   // the forward's saved statistics (batch * num_groups each), or both
  std::span<const float> rstd{};   //   empty: recomputed from x exactly as the forward computes them
  std::span<T> dx{};               // optional, same size as x: the gradient of x (and of residual)
  std::span<float> dgamma{};       // optional, channels
  std::span<float> dbeta{};        // optional, channels
  std::span<double> workspace{};   // plan::backward_workspace_size() doubles (needed only when non-zero)
};

namespace detail {
struct plan_state;
}

class plan {
 public:
  // Validates the problem (throws groupnorm::invalid_argument) and fixes the schedule. May allocate.
  explicit plan(const problem& p);

  // Out of place (or in place when y.data() == x.data()), float32. Throws groupnorm::invalid_argument on bad
  // buffers, before writing anything. arena == nullptr: runs in the calling thread's current arena. A run of
  // fewer than 32768 elements, or whose arena has concurrency 1, stays on the calling thread without entering
  // the arena. A parallel run may throw std::bad_alloc from oneTBB's task allocation, possibly after part of
  // the outputs was written (they are then unspecified).
  void run(std::span<const float> x, std::span<float> y, std::span<const float> gamma = {},
           std::span<const float> beta = {}, tbb::task_arena* arena = nullptr) const;

  // In place on one float32 buffer.
  void run_inplace(std::span<float> xy, std::span<const float> gamma = {}, std::span<const float> beta = {},
                   tbb::task_arena* arena = nullptr) const;

  // General form: any storage type, residual, saved statistics. T is float, f16 or bf16.
  template <class T>
  void run(const tensors<T>& t, tbb::task_arena* arena = nullptr) const;

  // Backward pass of this plan's forward (the same layout, data_type and fused_activation; problem::residual
  // is ignored: pass the forward's sum as x). Deterministic: bitwise identical at every thread count and on
  // every kernel family. Throws groupnorm::invalid_argument before writing anything. No heap allocation:
  // scratch lives on the stack up to a bound, beyond it in t.workspace.
  template <class T>
  void run_backward(const backward_tensors<T>& t, tbb::task_arena* arena = nullptr) const;
  // Doubles of scratch run_backward needs from the caller: 0 when it fits on the stack (2 * batch *
  // (channels + 2 * num_groups) <= 8192), else that count.
  std::size_t backward_workspace_size() const noexcept;

  const problem& description() const noexcept;
  std::size_t element_count() const noexcept;  // batch * channels * spatial
  isa selected_isa() const noexcept;           // the kernel family runs use (never `automatic`)

 private:
  std::shared_ptr<const detail::plan_state> state_;
};

extern template void plan::run<float>(const tensors<float>&, tbb::task_arena*) const;
extern template void plan::run<f16>(const tensors<f16>&, tbb::task_arena*) const;
extern template void plan::run<bf16>(const tensors<bf16>&, tbb::task_arena*) const;
extern template void plan::run_backward<float>(const backward_tensors<float>&, tbb::task_arena*) const;
extern template void plan::run_backward<f16>(const backward_tensors<f16>&, tbb::task_arena*) const;
extern template void plan::run_backward<bf16>(const backward_tensors<bf16>&, tbb::task_arena*) const;

// One-shot form of the NumPy reference `group_normalization(X, gamma, beta, num_groups, epsilon)`.
// shape = (batch, channels, spatial dims...) of the NCHW tensor x (rank >= 2). Returns y with the same shape.
std::vector<float> group_normalization(std::span<const float> x, std::span<const std::size_t> shape,
                                       std::span<const float> gamma, std::span<const float> beta,
                                       std::size_t num_groups, float epsilon = 1e-5f,
                                       tbb::task_arena* arena = nullptr);

// Names of the enums, one table each in the library: to_string gives the canonical name ("nhwc", "bf16",
// "gelu", "avx2", "automatic"; "unknown" for a value outside the enum), parse_* accepts it (and for dtype the
// NumPy names "float32", "float16", "bfloat16") and throws groupnorm::invalid_argument for any other string.
const char* to_string(layout v) noexcept;
const char* to_string(dtype v) noexcept;
const char* to_string(activation v) noexcept;
const char* to_string(isa k) noexcept;
layout parse_layout(std::string_view name);
dtype parse_dtype(std::string_view name);
activation parse_activation(std::string_view name);
isa parse_isa(std::string_view name);

// The kernel families of this build (supported by this CPU or not), least preferred first; and whether this
// CPU and build can run one (CPU features are detected once per process).
std::span<const isa> known_isas() noexcept;
bool isa_supported(isa k) noexcept;

}  // namespace groupnorm
