// bm_normal.cc: drawing z, the latent batch of every step: the table's
// normal slot (Philox4x32-10 and Box-Muller, vectorized per ISA and bit for
// bit the reference's) on the 6,400 normals of one z at batch 100 and
// latent 64; the step draws two.
//
//   normal/<isa>/n6400/nth:1
//
// Counter: items (normals) per second.
#include "bench.h"

namespace {

void bm_normal(benchmark::State &state, const sg_kernels *k, size_t n)
{
    sgb::Floats z(n);
    uint32_t step = 0;
    for (auto _ : state) {
        k->normal(z, 0, n, 0x5eedULL, 17, step++, 0);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed((int64_t)state.iterations() * (int64_t)n);
}

} // namespace

void sgb::register_normal()
{
    for (const sg_kernels *k : isas())
        add("normal/" + std::string(k->isa) + "/n6400", 1,
            [=](benchmark::State &s) { bm_normal(s, k, 6400); }, benchmark::kMicrosecond);
}
