// `groupnorm run`: GroupNorm on NumPy .npy files. Reads x (and gamma, beta, residual), validates everything
// through the library's plan before writing anything, normalizes in place in memory, and writes each output
// to a temporary file in the output's directory that is renamed over the final name only when every output is
// complete — after an error no output file exists (and an existing one is left as it was).
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <oneapi/tbb/info.h>
#include <oneapi/tbb/task_arena.h>

#include "groupnorm/groupnorm.hpp"
#include "half.hpp"
#include "npy.hpp"
#include "run.hpp"

namespace groupnorm::tool::run_command {
namespace {

constexpr std::uint64_t kProgressBytes = std::uint64_t{1} << 30;

[[noreturn]] void usage_error(const std::string& what) {
  throw failure{what + " (see groupnorm run --help)", 2};
}

}  // namespace

void check(const options& o) {
  if (o.x.empty()) usage_error("missing --x X.npy");
  if (!o.have_groups) usage_error("missing --groups N");
  if (o.out.empty()) usage_error("missing --out Y.npy");
  if (!o.sum.empty() && o.residual.empty()) usage_error("--sum needs --residual (sum is x + residual)");
  // Two outputs with one name would race for the final rename.
  const std::string* outs[] = {&o.out, &o.sum, &o.mean, &o.rstd, &o.stats};
  for (std::size_t i = 0; i < std::size(outs); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (!outs[i]->empty() && *outs[i] == *outs[j]) usage_error("two outputs are both '" + *outs[i] + "'");
}

namespace {

// gamma / beta: rank 1 with `channels` elements, widened to float.
std::vector<float> read_affine(const std::string& path, const char* what, std::size_t channels) {
  npy::array a = npy::read_file(path);
  if (a.shape().size() != 1 || a.count() != channels)
    throw failure{path + ": " + what + " has shape " + npy::shape_string(a.shape()) + ", expected (" +
                      std::to_string(channels) + ",) (the channels of x)",
                  2};
  switch (a.type()) {
    case npy::elem::f32:
      return std::move(a.f32);
    case npy::elem::f16: {
      std::vector<float> v(a.count());
      for (std::size_t i = 0; i < v.size(); ++i) v[i] = gn_half::f16_to_float(a.f16[i].bits);
      return v;
    }
    case npy::elem::bf16: {
      std::vector<float> v(a.count());
      for (std::size_t i = 0; i < v.size(); ++i) v[i] = gn_half::bf16_to_float(a.bf16[i].bits);
      return v;
    }
  }
  return {};
}

std::string gb(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GB", static_cast<double>(bytes) / 1e9);
  return buf;
}

// One pending output: a temporary file in the destination's directory, renamed into place by commit().
class pending_output {
 public:
  explicit pending_output(std::string path) : path_(std::move(path)) {}
  pending_output(const pending_output&) = delete;
  pending_output& operator=(const pending_output&) = delete;
  ~pending_output() {
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
  }

  // Writes `bytes` (a whole .npy / .npz image) or a header + data to the temporary file.
  void write(const std::string& head, const void* data, std::size_t bytes) {
    const auto slash = path_.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
    const std::string base = slash == std::string::npos ? path_ : path_.substr(slash + 1);
    if (base.empty()) throw failure{path_ + ": the output name is a directory", 2};
    std::string tmpl = (dir == "/" ? "" : dir) + "/." + base + ".tmp-XXXXXX";
    const int fd = ::mkstemp(tmpl.data());
    if (fd < 0)
      throw failure{path_ + ": cannot create a temporary file in '" + dir + "': " + std::strerror(errno), 1};
    tmp_ = tmpl;
    const mode_t mask = ::umask(0);
    ::umask(mask);
    if (::fchmod(fd, 0666 & ~mask) != 0) {
      const int e = errno;
      ::close(fd);
      throw failure{path_ + ": cannot set permissions: " + std::strerror(e), 1};
    }
    std::FILE* f = ::fdopen(fd, "wb");
    if (!f) {
      const int e = errno;
      ::close(fd);
      throw failure{path_ + ": cannot write: " + std::strerror(e), 1};
    }
    bool ok = std::fwrite(head.data(), 1, head.size(), f) == head.size();
    const auto* p = static_cast<const char*>(data);
    constexpr std::size_t piece = std::size_t{64} << 20;
    for (std::size_t done = 0; ok && done < bytes;) {
      const std::size_t n = std::min(piece, bytes - done);
      ok = std::fwrite(p + done, 1, n, f) == n;
      done += n;
    }
    const int e = ok ? 0 : errno;
    if (std::fclose(f) != 0 && ok) ok = false;
    if (!ok) throw failure{path_ + ": write failed: " + std::strerror(e ? e : errno), 1};
  }

  void commit() {
    if (::rename(tmp_.c_str(), path_.c_str()) != 0)
      throw failure{path_ + ": cannot rename the finished temporary file into place: " + std::strerror(errno),
                    1};
    tmp_.clear();
  }

 private:
  std::string path_;
  std::string tmp_;
};

template <class T>
std::vector<T>& storage(npy::array& a) {
  if constexpr (std::is_same_v<T, float>)
    return a.f32;
  else if constexpr (std::is_same_v<T, f16>)
    return a.f16;
  else
    return a.bf16;
}

}  // namespace

int execute(const options& o) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(clock::now() - t0).count(); };
  bool progress = o.verbose;
  auto note = [&](const std::string& s) {
    if (progress) std::fprintf(stderr, "groupnorm run: [%7.2f s] %s\n", elapsed(), s.c_str());
  };

  // x: read the header first so large inputs announce themselves before the long read.
  {
    struct stat st {};
    if (::stat(o.x.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) > kProgressBytes)
      progress = true;
  }
  for (const std::string* out : {&o.out, &o.sum, &o.mean, &o.rstd, &o.stats}) {
    struct stat st {};
    if (!out->empty() && ::stat(out->c_str(), &st) == 0 && S_ISDIR(st.st_mode))
      throw failure{*out + ": is a directory, expected an output file name", 2};
  }
  note("reading " + o.x);
  npy::array x = npy::read_file(o.x);
  const std::vector<std::size_t>& shape = x.shape();
  if (shape.size() < 2)
    throw failure{
        o.x + ": x has shape " + npy::shape_string(shape) + ", expected rank >= 2 (" +
            (o.lay == layout::nchw ? "batch, channels, spatial..." : "batch, spatial..., channels") + ")",
        2};
  problem p;
  p.batch = shape[0];
  p.channels = o.lay == layout::nchw ? shape[1] : shape.back();
  p.spatial = 1;
  const std::size_t first_spatial = o.lay == layout::nchw ? 2 : 1;
  const std::size_t end_spatial = o.lay == layout::nchw ? shape.size() : shape.size() - 1;
  for (std::size_t i = first_spatial; i < end_spatial; ++i) p.spatial *= shape[i];  // no overflow: x was read
  p.num_groups = o.groups;
  p.epsilon = o.eps;
  p.memory_layout = o.lay;
  p.data_type = x.type() == npy::elem::f32   ? dtype::f32
                : x.type() == npy::elem::f16 ? dtype::f16
                                             : dtype::bf16;
  p.fused_activation = o.act;
  p.residual = !o.residual.empty();
  p.kernel_isa = o.kernel;
  note("x: " + std::string(npy::elem_name(x.type())) + " " + npy::shape_string(shape) + ", " +
       gb(x.info.data_bytes));

  // Problem-level validation before reading anything else.
  const plan pl(p);

  std::vector<float> gamma, beta;
  if (!o.gamma.empty()) gamma = read_affine(o.gamma, "gamma", p.channels);
  if (!o.beta.empty()) beta = read_affine(o.beta, "beta", p.channels);
  npy::array residual;
  if (p.residual) {
    note("reading " + o.residual);
    residual = npy::read_file(o.residual);
    if (residual.shape() != shape || residual.type() != x.type())
      throw failure{o.residual + ": residual is " + npy::elem_name(residual.type()) + " " +
                        npy::shape_string(residual.shape()) + ", expected the dtype and shape of x (" +
                        npy::elem_name(x.type()) + " " + npy::shape_string(shape) + ")",
                    2};
  }

  const std::size_t pairs = p.batch * p.num_groups;
  std::vector<float> mean, rstd;
  const bool want_stats = !o.mean.empty() || !o.rstd.empty() || !o.stats.empty();
  if (want_stats) mean.resize(pairs), rstd.resize(pairs);
  npy::array sum;
  if (!o.sum.empty()) sum.info = x.info;

  // More threads than the hardware has are capped at it, as the library's own arenas are (oneTBB would
  // otherwise warn on stderr that it ignores the extra workers).
  const int hardware = tbb::info::default_concurrency();
  const int threads = o.threads > 0 && o.threads < hardware ? o.threads : hardware;
  tbb::task_arena arena(threads);
  note("normalizing " + std::to_string(pl.element_count()) + " elements on " + std::to_string(threads) +
       " thread(s), " + to_string(pl.selected_isa()) + " kernels");

  // In place: y overwrites x in memory, so a run needs one copy of the data.
  auto run_typed = [&](auto tag) {
    using T = decltype(tag);
    std::vector<T>& xs = storage<T>(x);
    tensors<T> t;
    t.x = xs;
    t.y = xs;
    t.gamma = gamma;
    t.beta = beta;
    if (p.residual) t.residual = storage<T>(residual);
    if (!o.sum.empty()) {
      storage<T>(sum).resize(xs.size());
      t.sum = storage<T>(sum);
    }
    t.mean = mean;
    t.rstd = rstd;
    pl.run(t, &arena);
  };
  switch (x.type()) {
    case npy::elem::f32:
      run_typed(float{});
      break;
    case npy::elem::f16:
      run_typed(f16{});
      break;
    case npy::elem::bf16:
      run_typed(bf16{});
      break;
  }

  // Outputs: all temporaries first, then the renames, so an error leaves no new output behind.
  std::vector<std::unique_ptr<pending_output>> outs;
  auto emit = [&](const std::string& path, const std::string& head, const void* data, std::size_t bytes) {
    note("writing " + path);
    outs.push_back(std::make_unique<pending_output>(path));
    outs.back()->write(head, data, bytes);
  };
  emit(o.out, npy::make_header(x.info.descr, shape), x.data(), static_cast<std::size_t>(x.info.data_bytes));
  if (!o.sum.empty())
    emit(o.sum, npy::make_header(x.info.descr, shape), sum.data(),
         static_cast<std::size_t>(x.info.data_bytes));
  const std::vector<std::size_t> stats_shape{p.batch, p.num_groups};
  const std::size_t stats_bytes = pairs * sizeof(float);
  if (!o.mean.empty()) emit(o.mean, npy::make_header("<f4", stats_shape), mean.data(), stats_bytes);
  if (!o.rstd.empty()) emit(o.rstd, npy::make_header("<f4", stats_shape), rstd.data(), stats_bytes);
  if (!o.stats.empty()) {
    const std::string npz =
        npy::serialize_npz({{"mean.npy", npy::serialize("<f4", stats_shape, mean.data(), stats_bytes)},
                            {"rstd.npy", npy::serialize("<f4", stats_shape, rstd.data(), stats_bytes)}});
    emit(o.stats, std::string(), npz.data(), npz.size());
  }
  for (auto& out : outs) out->commit();
  note("done");
  return 0;
}

}  // namespace groupnorm::tool::run_command
