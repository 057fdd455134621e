// fetch_probe.cpp — `sdnn_bench_probe`: what bounds a straight-line SpMM body on this core.
//
// The generated SpMM kernels are long runs of straight-line code: per nonzero one FMA whose A
// value is a broadcast memory operand, per distinct column of a tile one B vector load. This
// probe times synthetic loops of exactly that instruction mix, with the loads hitting L1, at a
// range of unrolled body sizes, and reports FMAs per ns against the core's register-only FMA
// rate. Two ceilings come out of it (bench/RESULTS.md, "What bounds the one-thread kernel"):
//   - with the body in L1i, how fast the load ports let a given loads-per-FMA mix run;
//   - with the body larger than L1i (as a kernel's first pass over a block is), how fast code
//     arrives from L2: the bytes of code per ns at which the mix saturates.
//
// zmm (AVX-512): vfmadd231ps acc, b, [values + disp8]{1to16}, B loads vmovups zmm, [B + disp8*64]
// ymm (AVX2):    vbroadcastss t, [values + disp8]; vfmadd231ps acc, b, t; B loads vmovups ymm
// The values pointer moves every 64 FMAs (add), as the kernels rebase theirs.
#include <xbyak/xbyak.h>
#include <xbyak/xbyak_util.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using Xbyak::Ymm;
using Xbyak::Zmm;

struct Mix {
  int every;  // one B load per `every` FMAs; 0: no loads at all (register operands only)
  const char* name;
};

class MixLoop : public Xbyak::CodeGenerator {
 public:
  // void fn(long iterations, const float* values, const float* b)
  // mem (ymm only): FMAs read pre-broadcast values (32 bytes each) as their memory operand instead
  // of a vbroadcastss into a register: 6-byte FMAs, the values pointer moved every 8.
  MixLoop(bool zmm, Mix mix, int fmas, bool mem = false)
      : Xbyak::CodeGenerator(4096 + static_cast<size_t>(fmas) * 24) {
    using namespace Xbyak::util;
    const int accs = zmm ? 28 : 13;
    for (int i = 0; i < (zmm ? 32 : 16); ++i) {
      if (zmm) vpxord(Zmm(i), Zmm(i), Zmm(i));
      else vxorps(Ymm(i), Ymm(i), Ymm(i));
    }
    mov(rax, rdi);
    Xbyak::Label loop;
    L(loop);
    mov(rcx, rsi);
    int b_loads = 0;
    for (int f = 0; f < fmas; ++f) {
      const int acc = f % accs;
      if (mix.every > 0 && f % mix.every == 0) {
        const int disp = ((b_loads * 7) % 128 - 64) * (zmm ? 64 : 32);  // zmm: disp8 * 64; ymm: disp32, as the kernels
        if (zmm) vmovups(Zmm(28 + b_loads % 2), ptr[rdx + disp]);
        else vmovups(Ymm(13), ptr[rdx + disp]);
        ++b_loads;
      }
      const int vdisp = (f % 64 - 32) * 4;
      if (zmm) {
        const Zmm b = Zmm(mix.every > 0 ? 28 + (b_loads + 1) % 2 : 30);
        if (mix.every > 0) vfmadd231ps(Zmm(acc), b, ptr_b[rcx + vdisp]);
        else vfmadd231ps(Zmm(acc), b, Zmm(31));
      } else {
        if (mix.every > 0 && mem) {
          vfmadd231ps(Ymm(acc), Ymm(13), ptr[rcx + (f % 8) * 32 - 128]);
          if (f % 8 == 7) add(rcx, 256);
          if (f % 64 == 63) mov(rcx, rsi);  // 2 KiB of pre-broadcast values
          continue;
        } else if (mix.every > 0) {
          vbroadcastss(Ymm(15), ptr[rcx + vdisp]);
          vfmadd231ps(Ymm(acc), Ymm(13), Ymm(15));
        } else {
          vfmadd231ps(Ymm(acc), Ymm(13), Ymm(14));
        }
      }
      if (f % 64 == 63) add(rcx, 64);  // back to the start every 1024 FMAs: 1 KiB of values
      if (f % 1024 == 1023) mov(rcx, rsi);
    }
    loads_per_fma_ = mix.every > 0 ? 1.0 + 1.0 / mix.every : 0.0;
    dec(rax);
    jnz(loop, T_NEAR);
    vzeroupper();
    ret();
    ready();
  }
  double loads_per_fma() const { return loads_per_fma_; }

 private:
  double loads_per_fma_ = 0;
};

// FMAs per ns, best of `reps` timed calls of about `target_fmas` FMAs each.
double fma_rate(const MixLoop& loop, int fmas, const float* values, const float* b, double target_fmas, int reps) {
  auto fn = loop.getCode<void (*)(long, const float*, const float*)>();
  const long iters = std::max<long>(1, static_cast<long>(target_fmas / fmas));
  fn(std::max<long>(1, iters / 8), values, b);  // warm-up
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn(iters, values, b);
    best = std::min(best, std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
  }
  return static_cast<double>(iters) * fmas / best;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"sdnn_bench_probe: FMA rate of the SpMM kernels' instruction mix (broadcast-operand FMAs + vector\n"
               "B loads, all data in L1) against the unrolled body's code size (bench/RESULTS.md)."};
  std::string isa = "avx512";
  std::vector<int> sizes = {256, 1280, 2560, 5120, 10240, 40960};
  int reps = 7;
  double target = 5e7;
  app.add_option("--isa", isa,
                 "avx512 (zmm, embedded broadcasts), avx2 (ymm, vbroadcastss) or avx2-mem (ymm FMAs reading\n"
                 "pre-broadcast 32-byte values from memory)")
      ->check(CLI::IsMember({"avx512", "avx2", "avx2-mem"}))
      ->capture_default_str();
  app.add_option("--fmas", sizes, "unrolled body sizes in FMAs (list)")->capture_default_str();
  app.add_option("--reps", reps, "timed calls per point (the best counts)")->capture_default_str();
  app.add_option("--target-fmas", target, "FMAs per timed call")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  const bool zmm = isa == "avx512";
  const Xbyak::util::Cpu cpu;
  if (zmm && !cpu.has(Xbyak::util::Cpu::tAVX512F)) {
    std::fprintf(stderr, "sdnn_bench_probe: this CPU has no AVX-512; use --isa avx2\n");
    return 1;
  }
  if (!cpu.has(Xbyak::util::Cpu::tAVX2) || !cpu.has(Xbyak::util::Cpu::tFMA)) {
    std::fprintf(stderr, "sdnn_bench_probe: this CPU has no AVX2 + FMA\n");
    return 1;
  }
  for (int s : sizes)
    if (s < 64 || s > 1000000) {
      std::fprintf(stderr, "sdnn_bench_probe: --fmas %d out of range [64, 1000000]\n", s);
      return 1;
    }

  // Values and B: 64-byte aligned, zero (no denormals), the pointers in the middle so every
  // displacement fits disp8.
  std::vector<float> storage(4096 + 16384 + 64, 0.0f);
  float* base = storage.data() + (16 - reinterpret_cast<uintptr_t>(storage.data()) / 4 % 16) % 16;
  const float* values = base + 1024;
  const float* b = base + 4096 + 8192;

  const Mix mixes[] = {{0, "register FMAs"}, {1, "1 B load : 1 FMA"}, {2, "1 : 2"}, {3, "1 : 3"}, {8, "1 : 8"},
                       {1 << 30, "no B loads"}};
  std::printf("sdnn_bench_probe: %s; FMA/ns of each mix (best of %d), %% of the register-FMA rate at the same size\n",
              isa.c_str(), reps);
  std::printf("%-18s %6s %9s %9s %8s %7s %10s\n", "mix", "FMAs", "code KiB", "B/FMA", "FMA/ns", "%peak", "code B/ns");
  for (int s : sizes) {
    double peak = 0;
    for (const Mix& mix : mixes) {
      MixLoop loop(zmm, mix, s, isa == "avx2-mem");
      const double rate = fma_rate(loop, s, values, b, target, reps);
      if (mix.every == 0) peak = rate;
      const double bytes_per_fma = static_cast<double>(loop.getSize()) / s;
      std::printf("%-18s %6d %9.1f %9.2f %8.3f %6.0f%% %10.1f\n", mix.name, s, loop.getSize() / 1024.0, bytes_per_fma,
                  rate, 100.0 * rate / peak, rate * bytes_per_fma);
    }
  }
  return 0;
}
