// In place vs out of place, plan reuse, plan copies: all the same bits.
#include <array>
#include <vector>

#include <oneapi/tbb/task_arena.h>

#include "test_util.hpp"

using namespace gn_test;

TEST_CASE("in place gives the same bits as out of place on tiny many-pair and split shapes") {
  const std::vector<shape> shapes = {{1, 32, 64, 8}, {2, 64, 33 * 31, 8}, {1, 4, 40000, 1}, {3, 10, 15, 5}};
  std::uint64_t seed = 1;
  tbb::task_arena arena(3);
  for (const shape& s : shapes) {
    CAPTURE(s.name());
    const std::vector<float> x = normal(s.elements(), seed++);
    const std::vector<float> gamma = uniform(s.channels, seed++, 0.5, 1.5),
                             beta = uniform(s.channels, seed++, -1, 1);
    const groupnorm::plan pl(make_problem(s));
    std::vector<float> out(x.size());
    pl.run(x, out, gamma, beta, &arena);

    std::vector<float> xy = x;
    pl.run_inplace(xy, gamma, beta, &arena);
    CHECK(same_bits(xy, out));

    // run() with y.data() == x.data() is in place too.
    std::vector<float> xy2 = x;
    pl.run(xy2, xy2, gamma, beta, &arena);
    CHECK(same_bits(xy2, out));

    // tensors<float> with x and y on one buffer, saving statistics.
    std::vector<float> xy3 = x, mean(s.pairs()), rstd(s.pairs());
    groupnorm::tensors<float> t{.x = xy3, .y = xy3, .gamma = gamma, .beta = beta, .mean = mean, .rstd = rstd};
    pl.run(t);
    CHECK(same_bits(xy3, out));
  }
}

TEST_CASE("plan reuse on new data gives the same bits as the one-shot function") {
  const shape s{2, 6, 4099, 3};
  const std::array<std::size_t, 3> dims = {s.batch, s.channels, s.spatial};
  const std::vector<float> gamma = uniform(s.channels, 5, 0.5, 1.5), beta = uniform(s.channels, 6, -1, 1);
  const groupnorm::plan pl(make_problem(s, 1e-3f));
  std::vector<float> y(s.elements());
  for (std::uint64_t seed : {10u, 11u, 12u}) {
    CAPTURE(seed);
    const std::vector<float> x =
        normal(s.elements(), seed, static_cast<double>(seed), 1.0 + static_cast<double>(seed) / 10);
    pl.run(x, y, gamma, beta);
    const std::vector<float> once = groupnorm::group_normalization(x, dims, gamma, beta, s.groups, 1e-3f);
    CHECK(same_bits(y, once));
  }
}

TEST_CASE("a copy of a plan and a moved plan give the same bits and the same description") {
  const shape s{1, 8, 9000, 2};
  const std::vector<float> x = normal(s.elements(), 77);
  const groupnorm::plan original(make_problem(s, 1e-4f));
  std::vector<float> y0(x.size());
  original.run(x, y0);

  const groupnorm::plan copy = original;  // NOLINT(performance-unnecessary-copy-initialization)
  std::vector<float> y1(x.size());
  copy.run(x, y1);
  CHECK(same_bits(y0, y1));
  CHECK(copy.element_count() == s.elements());
  CHECK(copy.description().num_groups == 2);
  CHECK(copy.description().epsilon == 1e-4f);
  CHECK(copy.selected_isa() == original.selected_isa());

  groupnorm::plan assigned(make_problem({1, 2, 2, 1}));
  assigned = copy;
  std::vector<float> y2(x.size());
  assigned.run(x, y2);
  CHECK(same_bits(y0, y2));

  groupnorm::plan moved(std::move(assigned));
  std::vector<float> y3(x.size());
  moved.run(x, y3);
  CHECK(same_bits(y0, y3));
}
