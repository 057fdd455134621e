// aot_writer.cpp — packs a LoweredModel into model.so.
//
//   <tmp>/code.bin     kernel code, each kernel at a 64-byte boundary
//   <tmp>/weights.bin  values streams and biases, each 64-byte aligned
//   <tmp>/model.S      one .incbin "file", offset, length per symbol (hidden globals)
//   <tmp>/plan.c       sdnn_plan_data: steps, kernel descriptors, tensor infos
//   <tmp>/libsdnn_runtime.a, sdnn.h, sdnn_plan.h   the runtime sdnnc carries (embedded_runtime.S.in)
//   cc -shared -fPIC model.S plan.c libsdnn_runtime.a -lm -lpthread -> <out>.tmp -> rename
// Nothing absolute lives in the code; the plan's pointers are ordinary data relocations.
#include "sdnn/backend/aot_writer.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "sdnn/ir/error.h"
#include "sdnn_plan.h"

extern char** environ;

// The runtime that model.so links, carried inside sdnnc (embedded_runtime.S.in).
extern "C" {
extern const unsigned char sdnn_embedded_runtime_archive[], sdnn_embedded_sdnn_h[], sdnn_embedded_sdnn_plan_h[];
extern const uint64_t sdnn_embedded_runtime_archive_size, sdnn_embedded_sdnn_h_size, sdnn_embedded_sdnn_plan_h_size;
}

namespace sdnn::backend {
namespace {

namespace fs = std::filesystem;

std::string c_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 32 || ch >= 127) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\%03o", ch);
      out += buf;
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out + "\"";
}

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/sdnnc-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) fail("cannot create a temporary directory in ", tmpl, ": ", std::strerror(errno));
    path_ = buf.data();
    guard_ = std::make_unique<TempPath>(path_, true);
  }
  ~TempDir() {
    std::error_code ec;
    if (!std::getenv("SDNNC_KEEP_TEMPS")) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::unique_ptr<TempPath> guard_;
};

// The interrupt handler's state: only what a signal handler may touch (fixed buffers, flags, the
// C compiler's pid); files are unlinked before directories.
struct CleanupSlot {
  char path[4096];
  bool dir;
  volatile std::sig_atomic_t used;
};
constexpr int kCleanupSlots = 64;
CleanupSlot g_cleanup[kCleanupSlots];
std::atomic<bool> g_cleanup_claimed[kCleanupSlots];  // slots are claimed from the compile threads too
volatile std::sig_atomic_t g_child_pid = 0;

extern "C" void on_interrupt(int sig) {
  const pid_t child = static_cast<pid_t>(g_child_pid);
  if (child > 0) {
    kill(child, SIGTERM);
    int status;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
  }
  for (const CleanupSlot& s : g_cleanup)
    if (s.used && !s.dir) unlink(s.path);
  for (const CleanupSlot& s : g_cleanup)
    if (s.used && s.dir) rmdir(s.path);
  signal(sig, SIG_DFL);
  raise(sig);
}

void write_file(const std::string& path, const void* data, size_t size) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  f.close();
  if (!f) fail("cannot write '", path, "': ", std::strerror(errno));
}

void pad_to(std::vector<uint8_t>& buf, size_t align) {
  buf.resize((buf.size() + align - 1) / align * align, 0);
}

// A float literal that reads back to exactly `x` ("(1.0f/0.0f)" style for infinities).
std::string c_float(float x) {
  if (std::isnan(x)) return "(0.0f/0.0f)";
  if (std::isinf(x)) return x > 0 ? "(1.0f/0.0f)" : "(-1.0f/0.0f)";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9ef", static_cast<double>(x));
  return buf;
}

std::string c_ints(const std::vector<int64_t>& v) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.empty() ? "0}" : "}");
}

// The constant arrays a step points to, by role name (weights, bias, a, b, gamma, beta, mask).
std::vector<std::pair<std::string, const std::vector<float>*>> step_constants(const LoweredStep& s) {
  std::vector<std::pair<std::string, const std::vector<float>*>> out;
  if (!s.window.weights.empty()) out.push_back({"weights", &s.window.weights});
  if (!s.window.bias.empty()) out.push_back({"bias", &s.window.bias});
  switch (s.op) {
    case SDNN_STEP_ELEMENTWISE:
      if (s.elementwise.has_src0_const) out.push_back({"a", &s.elementwise.src0_const});
      if (s.elementwise.has_src1_const) out.push_back({"b", &s.elementwise.src1_const});
      break;
    case SDNN_STEP_MATMUL:
      if (!s.matmul.b_const.empty()) out.push_back({"b", &s.matmul.b_const});
      break;
    case SDNN_STEP_LAYERNORM:
      out.push_back({"gamma", &s.norm.gamma});
      if (!s.norm.beta.empty()) out.push_back({"beta", &s.norm.beta});
      break;
    case SDNN_STEP_ATTENTION:
      if (!s.attention.mask_const.empty()) out.push_back({"mask", &s.attention.mask_const});
      break;
    case SDNN_STEP_GATHER_ROWS:
      out.push_back({"table", &s.table.table});
      break;
    default:
      break;
  }
  return out;
}

struct Blob {
  std::string symbol;
  size_t offset, size;
};

// The assembly and plan sources; file names in .incbin are as given (absolute or relative to
// the assembler's working directory).
struct Sources {
  std::vector<uint8_t> code, weights;
  std::string asm_text, plan_c;
};

std::string storage_ref(const ir::Storage& s) {
  uint32_t kind = s.kind == ir::Storage::Kind::Input    ? SDNN_BUF_INPUT
                  : s.kind == ir::Storage::Kind::Output ? SDNN_BUF_OUTPUT
                                                        : SDNN_BUF_ARENA;
  return str_cat("{", kind, "u, ", s.index, "u, ", s.offset, "u}");
}

Sources make_sources(const LoweredModel& m, const std::string& code_file, const std::string& weights_file) {
  Sources src;
  std::vector<Blob> code_syms, weight_syms;
  auto add_weights = [&](const std::string& sym, const std::vector<float>& v) {
    pad_to(src.weights, 64);
    size_t off = src.weights.size();
    const auto* p = reinterpret_cast<const uint8_t*>(v.data());
    src.weights.insert(src.weights.end(), p, p + v.size() * sizeof(float));
    // .incbin of length 0 is fine, but keep every symbol at least 4 bytes so it has an address of its own.
    if (v.empty()) src.weights.resize(src.weights.size() + 4, 0);
    weight_syms.push_back({sym, off, std::max<size_t>(v.size() * sizeof(float), 4)});
  };
  for (size_t i = 0; i < m.kernels.size(); ++i) {
    const LoweredKernel& k = m.kernels[i];
    pad_to(src.code, 64);
    code_syms.push_back({k.bin.symbol, src.code.size(), k.bin.code.size()});
    src.code.insert(src.code.end(), k.bin.code.begin(), k.bin.code.end());
    add_weights(str_cat("sdnn_w", i, "_values"), k.bin.values);
    if (!k.bias.empty()) add_weights(str_cat("sdnn_w", i, "_bias"), k.bias);
  }
  for (size_t i = 0; i < m.steps.size(); ++i) {
    for (const auto& [name, data] : step_constants(m.steps[i])) add_weights(str_cat("sdnn_s", i, "_", name), *data);
  }

  std::ostringstream as;
  as << "# Generated by " << m.producer << ": kernel code and weights of one model.\n";
  as << "\t.section .text.sdnn_kernels,\"ax\",@progbits\n";
  for (const Blob& b : code_syms) {
    as << "\t.p2align 6\n\t.globl " << b.symbol << "\n\t.hidden " << b.symbol << "\n\t.type " << b.symbol
       << ", @function\n"
       << b.symbol << ":\n\t.incbin " << c_string(code_file) << ", " << b.offset << ", " << b.size << "\n\t.size "
       << b.symbol << ", " << b.size << "\n";
  }
  as << "\t.section .rodata.sdnn_weights,\"a\",@progbits\n";
  for (const Blob& b : weight_syms) {
    as << "\t.p2align 6\n\t.globl " << b.symbol << "\n\t.hidden " << b.symbol << "\n\t.type " << b.symbol
       << ", @object\n"
       << b.symbol << ":\n\t.incbin " << c_string(weights_file) << ", " << b.offset << ", " << b.size << "\n\t.size "
       << b.symbol << ", " << b.size << "\n";
  }
  as << "\t.section .note.GNU-stack,\"\",@progbits\n";
  src.asm_text = as.str();

  std::ostringstream c;
  c << "/* Generated by " << m.producer << ": the plan of one model (see sdnn_plan.h). */\n";
  c << "#include \"sdnn_plan.h\"\n\n#define HIDDEN __attribute__((visibility(\"hidden\")))\n\n";
  for (size_t i = 0; i < m.kernels.size(); ++i) {
    const LoweredKernel& k = m.kernels[i];
    c << "HIDDEN void " << k.bin.symbol << "(const sdnn_kernel_args*);\n";
    c << "HIDDEN extern const float sdnn_w" << i << "_values[];\n";
    if (!k.bias.empty()) c << "HIDDEN extern const float sdnn_w" << i << "_bias[];\n";
    c << "static const int64_t k" << i << "_blocks[] = {";
    for (size_t j = 0; j < k.bin.block_offsets.size(); ++j) c << (j ? "," : "") << k.bin.block_offsets[j];
    c << "};\n";
    const KernelPlan& p = k.bin.plan;
    c << "static const sdnn_kernel_step k" << i << " = {" << k.bin.symbol << ", sdnn_w" << i << "_values, "
      << (k.bias.empty() ? std::string("0") : str_cat("sdnn_w", i, "_bias")) << ", k" << i << "_blocks, "
      << p.num_tiles() << ", " << p.num_k_blocks() << ", " << p.n << ", " << p.column_align() << ", " << k.batch
      << ", " << k.b_batch_stride << ", " << k.c_batch_stride << ", " << k.b_col_scale << ", " << k.c_col_scale << ", "
      << c_string(k.layer + ": " + p.str()) << ", " << (p.residual ? 1 : 0) << "u, " << k.split << "u};\n";
  }
  auto io = [&](const char* what, const std::vector<LoweredModel::Io>& list) {
    for (size_t i = 0; i < list.size(); ++i) {
      c << "static const int64_t " << what << i << "_dims[] = {";
      for (size_t d = 0; d < list[i].shape.size(); ++d) c << (d ? "," : "") << list[i].shape[d];
      if (list[i].shape.empty()) c << "1";
      c << "};\n";
    }
    c << "static const sdnn_tensor_info " << what << "s[] = {";
    for (size_t i = 0; i < list.size(); ++i)
      c << (i ? ", " : "") << "{" << c_string(list[i].name) << ", " << list[i].shape.size() << ", " << what << i
        << "_dims, " << (list[i].i64 ? "SDNN_I64" : "SDNN_F32") << "}";
    c << "};\n";
  };
  io("input", m.inputs);
  io("output", m.outputs);
  for (size_t i = 0; i < m.steps.size(); ++i) {
    const LoweredStep& s = m.steps[i];
    auto constants = step_constants(s);
    for (const auto& [name, data] : constants) c << "HIDDEN extern const float sdnn_s" << i << "_" << name << "[];\n";
    // The symbol of constant `name` of this step, or 0.
    auto sym = [&](const char* name) {
      for (const auto& [n, data] : constants)
        if (n == name) return str_cat("sdnn_s", i, "_", name);
      return std::string("0");
    };
    if (s.has_window) {
      const WindowStep& w = s.window;
      c << "static const sdnn_window_params win" << i << " = {" << w.batch << ", " << w.channels << ", " << w.in_h
        << ", " << w.in_w << ", " << w.out_h << ", " << w.out_w << ", " << w.kernel_h << ", " << w.kernel_w << ", "
        << w.stride_h << ", " << w.stride_w << ", " << w.pad_top << ", " << w.pad_left << ", " << w.dilation_h << ", "
        << w.dilation_w << ", " << w.vl << ", " << sym("weights") << ", " << sym("bias") << ", " << w.act << "u, "
        << w.count_include_pad << "u, " << w.by_blocks << "u, " << w.residual << "u, " << w.in_row_stride << ", "
        << w.dst_nchw << "u, 0u};\n";
    }
    switch (s.op) {
      case SDNN_STEP_ELEMENTWISE: {
        const ElementwiseStep& e = s.elementwise;
        c << "static const sdnn_elementwise_params par" << i << " = {.fn = " << e.fn << "u, .rank = " << e.dims.size()
          << "u, .alpha = " << c_float(e.alpha) << ", .beta = " << c_float(e.beta) << ", .dims = " << c_ints(e.dims)
          << ", .dst_strides = " << c_ints(e.dst_strides) << ", .src0_strides = " << c_ints(e.src0_strides)
          << ", .src1_strides = " << c_ints(e.src1_strides) << ", .src0_const = " << sym("a")
          << ", .src1_const = " << sym("b") << "};\n";
        break;
      }
      case SDNN_STEP_MATMUL: {
        const MatmulStep& mm = s.matmul;
        c << "static const sdnn_matmul_params par" << i << " = {.m = " << mm.m << ", .n = " << mm.n << ", .k = " << mm.k
          << ", .lda = " << mm.lda << ", .ldb = " << mm.ldb << ", .ldc = " << mm.ldc
          << ", .batch_rank = " << mm.batch_dims.size() << "u, .batch_dims = " << c_ints(mm.batch_dims)
          << ", .a_batch_strides = " << c_ints(mm.a_batch_strides) << ", .b_batch_strides = "
          << c_ints(mm.b_batch_strides) << ", .c_batch_strides = " << c_ints(mm.c_batch_strides)
          << ", .b_const = " << sym("b") << "};\n";
        break;
      }
      case SDNN_STEP_LAYERNORM: {
        const NormStep& ns = s.norm;
        c << "static const sdnn_norm_params par" << i << " = {.tokens = " << ns.tokens << ", .features = " << ns.features
          << ", .vl = " << ns.vl << ", .blocked = " << ns.blocked << "u, .epsilon = " << c_float(ns.epsilon)
          << ", .gamma = " << sym("gamma") << ", .beta = " << sym("beta") << "};\n";
        break;
      }
      case SDNN_STEP_ATTENTION: {
        const AttentionStep& at = s.attention;
        c << "static const sdnn_attention_params par" << i << " = {.batch = " << at.batch << ", .seq = " << at.seq
          << ", .heads = " << at.heads << ", .head_dim = " << at.head_dim << ", .vl = " << at.vl
          << ", .mask_batch = " << at.mask_batch << ", .has_mask = " << at.has_mask << "u, .scale = "
          << c_float(at.scale) << ", .mask_const = " << sym("mask") << "};\n";
        break;
      }
      default:
        break;
    }
  }
  c << "static const sdnn_step steps[] = {\n";
  for (size_t i = 0; i < m.steps.size(); ++i) {
    const LoweredStep& s = m.steps[i];
    const bool has_params = s.op == SDNN_STEP_ELEMENTWISE || s.op == SDNN_STEP_MATMUL || s.op == SDNN_STEP_LAYERNORM ||
                            s.op == SDNN_STEP_ATTENTION;
    const std::string params = has_params                         ? str_cat("&par", i)
                               : s.op == SDNN_STEP_GATHER_ROWS ? str_cat("sdnn_s", i, "_table")
                                                               : std::string("0");
    c << "  {.op = " << s.op << "u, .src0 = " << storage_ref(s.src0) << ", .src1 = " << storage_ref(s.src1)
      << ", .dst = " << storage_ref(s.dst) << ", .dims = {" << s.dims[0] << ", " << s.dims[1] << ", " << s.dims[2]
      << ", " << s.dims[3] << "}, .kernel = " << (s.kernel >= 0 ? str_cat("&k", s.kernel) : std::string("0"))
      << ", .conv = " << (s.has_window ? str_cat("&win", i) : std::string("0")) << ", .alpha = " << c_float(s.alpha)
      << ", .beta = " << c_float(s.beta) << ", .src2 = " << storage_ref(s.src2) << ", .src3 = " << storage_ref(s.src3)
      << ", .params = " << params << "},\n";
  }
  if (m.steps.empty()) c << "  {.op = 0u},\n";
  c << "};\n\n";
  c << "const sdnn_plan sdnn_plan_data = {.magic = SDNN_PLAN_MAGIC, .version = SDNN_PLAN_VERSION, .required_cpu = "
    << m.required_cpu << "u, .num_inputs = " << m.inputs.size() << "u, .num_outputs = " << m.outputs.size()
    << "u, .num_steps = " << m.steps.size() << "u, .arena_bytes = " << m.arena_bytes
    << "u, .scratch_bytes = " << m.scratch_bytes << "u, .inputs = inputs, .outputs = outputs, .steps = steps, "
    << ".producer = " << c_string(m.producer) << "};\n";
  src.plan_c = c.str();
  return src;
}

// Runs argv, sending its stdout+stderr to `log`; returns the exit status (-1 if it did not run).
int run_command(const std::vector<std::string>& argv, const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  g_child_pid = pid;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_child_pid = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_text(const std::string& path, size_t limit) {
  std::ifstream f(path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (s.size() > limit) s = s.substr(0, limit) + "...";
  return s;
}

// The runtime archive and the directory of its headers for linking a model.so: those sdnnc
// carries, written into `dir`; SDNN_RUNTIME_ARCHIVE / SDNN_RUNTIME_INCLUDE in the environment name
// others (for trying a changed runtime without rebuilding sdnnc).
struct RuntimeFiles {
  std::string archive, include;
};
RuntimeFiles runtime_files(const std::string& dir) {
  RuntimeFiles r;
  const char* archive = std::getenv("SDNN_RUNTIME_ARCHIVE");
  const char* include = std::getenv("SDNN_RUNTIME_INCLUDE");
  if (archive && *archive) {
    r.archive = archive;
  } else {
    r.archive = dir + "/libsdnn_runtime.a";
    write_file(r.archive, sdnn_embedded_runtime_archive, sdnn_embedded_runtime_archive_size);
  }
  if (include && *include) {
    r.include = include;
  } else {
    r.include = dir;
    write_file(dir + "/sdnn.h", sdnn_embedded_sdnn_h, sdnn_embedded_sdnn_h_size);
    write_file(dir + "/sdnn_plan.h", sdnn_embedded_sdnn_plan_h, sdnn_embedded_sdnn_plan_h_size);
  }
  return r;
}

// Renames `from` over `to`, or removes `from` and fails.
void commit(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0) {
    int e = errno;
    std::remove(from.c_str());
    fail("cannot write '", to, "': ", std::strerror(e));
  }
}

}  // namespace

void install_interrupt_cleanup() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&sa.sa_mask, sig);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
}

TempPath::TempPath(const std::string& path, bool dir) {
  if (path.size() >= sizeof(CleanupSlot::path)) return;  // not removable on interrupt; still removed normally
  for (int i = 0; i < kCleanupSlots; ++i) {
    bool free = false;
    if (g_cleanup_claimed[i].compare_exchange_strong(free, true)) {
      std::memcpy(g_cleanup[i].path, path.c_str(), path.size() + 1);
      g_cleanup[i].dir = dir;
      g_cleanup[i].used = 1;  // last: the handler sees a slot only once its path is complete
      slot_ = i;
      return;
    }
  }
}

TempPath::~TempPath() {
  if (slot_ < 0) return;
  g_cleanup[slot_].used = 0;
  g_cleanup_claimed[slot_] = false;
}

void check_output_writable(const std::string& path) {
  if (path.empty()) fail("no output path given (-o)");
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) fail("cannot write '", path, "': it is a directory");
  // The output is written aside and renamed over the path: a device, pipe or socket there would be
  // replaced, not written.
  if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    fail("cannot write '", path, "': not a regular file (a device, pipe or socket)");
  std::string probe = str_cat(path, ".sdnnc-probe.", getpid());
  TempPath probe_guard(probe);
  int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) fail("cannot write '", path, "': ", std::strerror(errno));
  ::close(fd);
  std::remove(probe.c_str());
}

void write_shared_object(const LoweredModel& m, const std::string& path) {
  TempDir tmp;
  const std::string code_file = tmp.path() + "/code.bin", weights_file = tmp.path() + "/weights.bin";
  const TempPath g1(code_file), g2(weights_file), g3(tmp.path() + "/model.S"), g4(tmp.path() + "/plan.c"),
      g5(tmp.path() + "/cc.log"), g6(tmp.path() + "/libsdnn_runtime.a"), g7(tmp.path() + "/sdnn.h"),
      g8(tmp.path() + "/sdnn_plan.h");
  const RuntimeFiles runtime = runtime_files(tmp.path());
  Sources src = make_sources(m, code_file, weights_file);
  write_file(code_file, src.code.data(), src.code.size());
  write_file(weights_file, src.weights.data(), src.weights.size());
  write_file(tmp.path() + "/model.S", src.asm_text.data(), src.asm_text.size());
  write_file(tmp.path() + "/plan.c", src.plan_c.data(), src.plan_c.size());
  const char* cc_env = std::getenv("CC");
  const std::string cc = cc_env && *cc_env ? cc_env : "cc";
  const std::string out_tmp = str_cat(path, ".tmp.", getpid());
  const TempPath out_guard(out_tmp);
  const std::string log = tmp.path() + "/cc.log";
  int rc = run_command({cc, "-shared", "-fPIC", "-O2", "-o", out_tmp, "-I", runtime.include, tmp.path() + "/model.S",
                        tmp.path() + "/plan.c",
                        // Nothing in the plan references the ABI entry points: take the whole runtime.
                        "-Wl,--whole-archive", runtime.archive, "-Wl,--no-whole-archive", "-lm", "-lpthread", "-Wl,--fatal-warnings",
                        "-Wl,-z,noexecstack", "-Wl,--no-undefined"},
                       log);
  if (rc != 0) {
    std::remove(out_tmp.c_str());
    if (rc < 0) fail("cannot run the C compiler '", cc, "' (set CC to another one)");
    // The compiler's own messages go above the one-line error.
    std::fprintf(stderr, "%s\n", read_text(log, 4000).c_str());
    fail("linking '", path, "' with '", cc, "' failed (exit ", rc, "); its messages are above");
  }
  commit(out_tmp, path);
}

void write_assembly(const LoweredModel& m, const std::string& path) {
  const std::string code_file = path + ".code.bin", weights_file = path + ".weights.bin";
  auto base = [](const std::string& p) { return fs::path(p).filename().string(); };
  // .incbin names resolve against the assembler's working directory: name the files as they
  // are named relative to the .S when it is assembled from its own directory.
  Sources src = make_sources(m, base(code_file), base(weights_file));
  std::vector<std::pair<std::string, std::string>> files = {
      {code_file, std::string(src.code.begin(), src.code.end())},
      {weights_file, std::string(src.weights.begin(), src.weights.end())},
      {path + ".plan.c", src.plan_c},
      {path, src.asm_text}};
  for (const auto& [file, data] : files) {
    std::string t = str_cat(file, ".tmp.", getpid());
    const TempPath guard(t);
    write_file(t, data.data(), data.size());
    commit(t, file);
  }
}

}  // namespace sdnn::backend
