// Data-parallel training through the installed xgrad::dist: y = w·x fitted on 6 examples split
// over the ranks, each rank's gradient weighted by its share; the result must be whole-batch
// training's on every rank. Runs alone (rank 0 of 1) and under mpirun.
#include <xgrad/dist.hpp>
#include <xgrad/xgrad.hpp>

#include <cmath>
#include <cstdio>

namespace {

using namespace xgrad;

// Mean squared error of w·x against y over items [s.begin, s.end).
Var<double> loss(const Var<double>& w, const std::vector<double>& xs, const std::vector<double>& ys, data::Shard s) {
  Array<double> x = xt::zeros<double>({s.size()}), y = xt::zeros<double>({s.size()});
  for (std::size_t i = s.begin; i < s.end; ++i) x(i - s.begin) = xs[i], y(i - s.begin) = ys[i];
  return mse_loss(w * constant<double>(x), constant<double>(y));
}

}  // namespace

int main(int argc, char** argv) {
  dist::Session session(argc, argv);
  const std::vector<double> xs{1, 2, 3, 4, 5, 6}, ys{2.5, 3.5, 7.5, 7, 11, 13};
  const data::Shard mine = data::shard(xs.size(), dist::rank(), dist::world_size()), all{0, xs.size()};
  Var<double> w = param<double>(Array<double>{double(dist::rank())}), ref = param<double>(Array<double>{0.0});
  dist::broadcast_parameters(std::vector<Var<double>>{w});
  for (int step = 0; step < 20; ++step) {
    loss(w, xs, ys, mine).backward();
    dist::all_reduce_gradients(std::vector<Var<double>>{w}, double(mine.size()) / double(xs.size()));
    loss(ref, xs, ys, all).backward();
    for (Var<double>* p : {&w, &ref}) {
      p->mutable_value() -= 0.01 * p->grad();
      p->zero_grad();
    }
    clear_tape();
  }
  const double mine_w = w.value()(0), diff = std::abs(mine_w - ref.value()(0));
  // Identical on every rank: the sum over ranks is world_size times this rank's value.
  const bool same = dist::all_reduce_sum(mine_w) == dist::world_size() * mine_w;
  if (dist::rank() == 0)
    std::printf("dist downstream: %d ranks, w = %.6f, whole-batch difference %.2g\n", dist::world_size(), mine_w,
                diff);
  return diff < 1e-12 && same ? 0 : 1;
}
