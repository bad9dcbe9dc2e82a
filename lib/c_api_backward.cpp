// The backward C ABI: gn_group_norm_backward_f32 and gn_group_norm_backward_ex.
#include <string>
#include <vector>

#include "c_api_support.hpp"
#include "entry.hpp"
#include "groupnorm/groupnorm.h"
#include "plan/backward.hpp"

namespace {

using namespace groupnorm;

void reject_forward_field(const void* field, const char* name, const char* why) {
  if (field != nullptr)
    throw invalid_argument(std::string("groupnorm: options->") + name +
                           " is set, expected NULL in the backward (" + why + ")");
}

struct backward_args {
  const void* x;
  const void* dy;
  const float* gamma;
  const float* beta;
  const float* mean;
  const float* rstd;
  void* dx;
  float* dgamma;
  float* dbeta;
};

gn_status run_backward_c(const backward_args& a, std::size_t batch, std::size_t channels, std::size_t spatial,
                         std::size_t num_groups, float epsilon, const gn_options& o) {
  return detail::guarded([&] {
    detail::check_num_threads(o);
    reject_forward_field(o.residual, "residual", "pass the forward's sum x + residual as x");
    reject_forward_field(o.sum, "sum", "the backward writes no sum");
    reject_forward_field(o.mean, "mean", "pass the saved statistics as the mean argument");
    reject_forward_field(o.rstd, "rstd", "pass the saved statistics as the rstd argument");
    const detail::plan_state& s = detail::one_shot_plan_state(
        detail::one_shot_problem(batch, channels, spatial, num_groups, epsilon, o));
    // Scratch beyond the stack bound: the one allocation of a one-shot call (documented in groupnorm.h).
    std::vector<double> workspace(detail::backward_workspace_doubles(s));
    const detail::backward_buffers b{a.x,    a.dy, a.gamma,  a.beta,  a.mean,
                                     a.rstd, a.dx, a.dgamma, a.dbeta, workspace.data()};
    detail::run_backward_pointers(s, b, detail::shared_arena(o.num_threads));
  });
}

}  // namespace

extern "C" {

gn_status gn_group_norm_backward_f32(const float* x, const float* dy, const float* gamma, const float* mean,
                                     const float* rstd, float* dx, float* dgamma, float* dbeta, size_t batch,
                                     size_t channels, size_t spatial, size_t num_groups, float epsilon,
                                     int num_threads) {
  gn_options o;
  gn_options_init(&o);
  o.num_threads = num_threads;
  return run_backward_c({x, dy, gamma, nullptr, mean, rstd, dx, dgamma, dbeta}, batch, channels, spatial,
                        num_groups, epsilon, o);
}

gn_status gn_group_norm_backward_ex(const void* x, const void* dy, const float* gamma, const float* beta,
                                    const float* mean, const float* rstd, void* dx, float* dgamma,
                                    float* dbeta, size_t batch, size_t channels, size_t spatial,
                                    size_t num_groups, float epsilon, const gn_options* options) {
  gn_options o;
  gn_options_init(&o);
  if (options != nullptr) {
    const gn_status st = detail::guarded([&] { detail::read_options(*options, o); });
    if (st != GN_OK) return st;
  }
  return run_backward_c({x, dy, gamma, beta, mean, rstd, dx, dgamma, dbeta}, batch, channels, spatial,
                        num_groups, epsilon, o);
}

}  // extern "C"
