// sdnnc — the compiler driver: ONNX model -> model.so (or its IR / assembly).
//
//   sdnnc model.onnx -o model.so [--target native|avx512|avx2] [--input-shape x=64x512]
//         [--dump-ir=after-all|after:<pass>] [--stop-after=<pass>] [--emit=ir|asm|so]
//
// Stages: import -> pass pipeline (passes/pipeline.cpp) -> lower (kernel plans + emission)
// -> AOT writer. Every error is an sdnn::Error, printed once here as "sdnnc: error: ...".
#include <CLI/CLI.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "sdnn/backend/aot_writer.h"
#include "sdnn/backend/lower.h"
#include "sdnn/frontend/onnx_importer.h"
#include "sdnn/ir/error.h"
#include "sdnn/passes/pass.h"

namespace {

using namespace sdnn;

// $SDNN_TUNE, else fast (test suites set SDNN_TUNE=none for reproducible plans).
std::string default_tune_level() {
  const char* env = std::getenv("SDNN_TUNE");
  return env && *env ? env : "fast";
}

struct Options {
  std::string model, output, target = "native", dump_ir, stop_after, emit = "so";
  std::vector<std::string> input_shapes;
  double sparse_threshold = passes::PipelineOptions{}.sparse_threshold;
  int threads = 0;
  bool verbose = false;
  bool no_permute = false;
  bool no_direct_conv = false;
  bool no_masked_conv = false;
  std::string thread_split = "auto";
  std::string tune = default_tune_level(), tune_cache = backend::default_tune_cache_dir(), report;
  bool clear_tune_cache = false;
};

// Length of the well-formed UTF-8 sequence at text[i] (2-4 bytes, no overlong forms or
// surrogates), or 0.
size_t utf8_sequence(const std::string& text, size_t i) {
  const auto at = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b = at(i);
  const size_t len = b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
  if (len == 0 || i + len > text.size()) return 0;
  for (size_t k = 1; k < len; ++k)
    if ((at(i + k) & 0xC0) != 0x80) return 0;
  const unsigned char c = at(i + 1);
  if ((b == 0xE0 && c < 0xA0) || (b == 0xED && c > 0x9F) || (b == 0xF0 && c < 0x90) || (b == 0xF4 && c > 0x8F))
    return 0;
  return len;
}

// An error message as one line of valid UTF-8: a newline (in a node name from the model) as \n,
// other control bytes and bytes that are no part of a well-formed UTF-8 character (names from a
// damaged model) as \xNN, so a message never spans or forges lines.
std::string one_line(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const unsigned char ch = static_cast<unsigned char>(text[i]);
    const size_t len = ch < 0x80 ? 1 : utf8_sequence(text, i);
    if (ch == '\n') out += "\\n";
    else if (ch < 0x20 || ch == 0x7f || len == 0)
      out += str_cat("\\x", "0123456789abcdef"[ch >> 4], "0123456789abcdef"[ch & 15]);
    else out.append(text, i, len);
    i += len ? len : 1;
  }
  return out;
}

// Whether the path exists and is a device, pipe or socket (neither a regular file nor a directory).
bool is_stream(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

// Whether two paths name one file: the same inode where both exist, else the same path once
// made absolute and normal (symlinks of the existing part resolved).
bool same_file(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  if (stat(a.c_str(), &sa) == 0 && stat(b.c_str(), &sb) == 0) return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
  std::error_code ea, eb;
  const auto ca = std::filesystem::weakly_canonical(a, ea), cb = std::filesystem::weakly_canonical(b, eb);
  return !ea && !eb && ca == cb;
}

std::pair<std::string, ir::Shape> parse_input_shape(const std::string& spec) {
  auto eq = spec.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
    fail("--input-shape '", spec, "': expected NAME=DIMS such as x=64x512");
  ir::Shape dims;
  std::string cur;
  for (char ch : spec.substr(eq + 1) + "x") {
    if (ch == 'x' || ch == ',') {
      if (cur.empty()) fail("--input-shape '", spec, "': empty dimension");
      size_t used = 0;
      long long d = -1;
      try {
        d = std::stoll(cur, &used);
      } catch (const std::exception&) {
      }
      if (used != cur.size() || d <= 0) fail("--input-shape '", spec, "': '", cur, "' is not a positive integer");
      dims.push_back(d);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  return {spec.substr(0, eq), dims};
}

// Removes the tuner's cache files (16 hex digits, no extension) from `dir`; leaves anything else.
void clear_tune_cache(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) return;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() == 16 && name.find_first_not_of("0123456789abcdef") == std::string::npos) fs::remove(e.path(), ec);
  }
}

// The compile report: one entry per generated kernel, with what the passes and the tuner decided.
void write_report(const ir::Graph& g, const backend::LoweredModel& m, const std::string& path) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& n : g.nodes()) {
    const std::string symbol = n->get_str("symbol", "");
    if (symbol.empty()) continue;
    auto it = std::find_if(m.kernels.begin(), m.kernels.end(),
                           [&](const backend::LoweredKernel& k) { return k.bin.symbol == symbol; });
    if (it == m.kernels.end()) continue;
    const backend::KernelPlan& p = it->bin.plan;
    nlohmann::json l = {{"layer", n->name},
                        {"op", n->op},
                        {"m", p.m},
                        {"k", p.k},
                        {"n", p.n},
                        {"batch", it->batch},
                        {"nnz", it->bin.nnz},
                        {"density", static_cast<double>(it->bin.nnz) / static_cast<double>(p.m * p.k)},
                        {"kernel", n->get_str("kernel", "")},
                        {"plan", p.str()},
                        {"thread_split", it->split != 0 ? "auto" : "rows"},  // SDNN_SPLIT_COLUMNS : SDNN_SPLIT_ROWS
                        {"symbol", symbol},
                        {"code_bytes", it->bin.code.size()},
                        {"values_bytes", it->bin.values.size() * 4}};
    if (n->has("tile_loads")) l["tile_loads"] = n->get_str("tile_loads", "");
    if (it->tune.us > 0) {
      l["tune"] = {{"candidates", it->tune.candidates},
                   {"from_cache", it->tune.from_cache},
                   {"us", it->tune.us},
                   {"gflops", 2.0 * static_cast<double>(it->bin.nnz) * static_cast<double>(p.n) / it->tune.us * 1e-3}};
    }
    layers.push_back(l);
  }
  nlohmann::json report = {{"model", g.meta().count("model") ? g.meta().at("model") : ""},
                           {"producer", m.producer},
                           {"arena_bytes", m.arena_bytes},
                           {"layers", layers}};
  const std::string tmp = path + ".tmp";
  const backend::TempPath guard(tmp);
  std::ofstream f(tmp);
  f << report.dump(2) << "\n";
  f.close();
  if (!f || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail("cannot write the report '", path, "'");
  }
}

class Driver {
 public:
  explicit Driver(const Options& o) : o_(o) {}

  template <typename F>
  auto timed(const char* stage, F&& f) {
    auto t0 = std::chrono::steady_clock::now();
    auto r = f();
    if (o_.verbose)
      std::fprintf(stderr, "sdnnc: %-8s %8.1f ms\n", stage,
                   std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    return r;
  }

  int run() {
    if (o_.emit != "so" && o_.emit != "asm" && o_.emit != "ir") fail("--emit must be ir, asm or so, not '", o_.emit, "'");
    if (!o_.stop_after.empty() && o_.emit != "ir") fail("--stop-after needs --emit=ir");
    if (!(o_.sparse_threshold >= 0 && o_.sparse_threshold <= 1)) fail("--sparse-threshold must be within [0, 1]");
    if (o_.threads < 0) fail("--threads must be >= 0");
    backend::LowerOptions lo;
    lo.isa = backend::parse_target(o_.target);
    lo.threads = o_.threads;
    lo.column_split = backend::parse_thread_split(o_.thread_split);
    lo.tune.level = backend::parse_tune_level(o_.tune);
    lo.tune.cache_dir = o_.tune_cache;
    lo.progress = o_.verbose || isatty(STDERR_FILENO);
    if (o_.clear_tune_cache) clear_tune_cache(o_.tune_cache);
    if (!o_.report.empty()) backend::check_output_writable(o_.report);
    passes::PipelineOptions po;
    po.sparse_threshold = o_.sparse_threshold;
    po.vector_floats = backend::vector_floats(lo.isa);
    po.tile_height = o_.no_permute ? 0 : backend::spmm_tile_height(lo.isa);
    po.direct_conv = !o_.no_direct_conv;
    po.masked_conv = !o_.no_masked_conv;

    const auto pass_names = passes::pipeline_pass_names(po);
    std::vector<std::string> stages = {"import"};
    stages.insert(stages.end(), pass_names.begin(), pass_names.end());
    stages.push_back("lower");
    check_stage_option("--dump-ir", dump_stage(), stages);
    check_stage_option("--stop-after", o_.stop_after, stages);
    // IR text goes straight into a device or pipe (-o /dev/null); files are written aside and
    // renamed over the path, which check_output_writable refuses for anything but a regular file.
    if (o_.output != "-" && !(o_.emit == "ir" && is_stream(o_.output))) backend::check_output_writable(o_.output);
    if (o_.output == "-" && o_.emit != "ir") fail("-o - (standard output) is for --emit=ir only");
    // No output may overwrite the model or the other output.
    const bool writes_output = o_.output != "-";
    if (writes_output && same_file(o_.output, o_.model)) fail("-o '", o_.output, "' is the input model");
    if (!o_.report.empty() && same_file(o_.report, o_.model)) fail("--report '", o_.report, "' is the input model");
    if (!o_.report.empty() && writes_output && same_file(o_.report, o_.output))
      fail("--report '", o_.report, "' is the -o output");

    frontend::ImportOptions io;
    for (const auto& spec : o_.input_shapes) {
      auto [name, dims] = parse_input_shape(spec);
      if (!io.input_shapes.emplace(name, dims).second) fail("--input-shape given twice for '", name, "'");
    }
    auto g = timed("import", [&] { return frontend::import_onnx_file(o_.model, io); });
    ir::verify(*g, "import");
    if (after("import", true, *g)) return finish(*g, nullptr);

    bool stopped = false;
    timed("passes", [&] {
      passes::run_pipeline(*g, po, [&](const std::string& name, bool changed) {
        stopped = after(name, changed, *g);
        return !stopped;
      });
      return 0;
    });
    if (stopped) return finish(*g, nullptr);
    auto lowered = timed("lower", [&] { return backend::lower(*g, lo); });
    after("lower", true, *g);
    return finish(*g, &lowered);
  }

 private:
  std::string dump_stage() const {
    if (o_.dump_ir.empty() || o_.dump_ir == "after-all") return "";
    if (o_.dump_ir.rfind("after:", 0) == 0 && o_.dump_ir.size() > 6) return o_.dump_ir.substr(6);
    fail("--dump-ir must be after-all or after:<stage>, not '", o_.dump_ir, "'");
  }

  static void check_stage_option(const char* opt, const std::string& stage, const std::vector<std::string>& stages) {
    if (stage.empty()) return;
    for (const auto& s : stages)
      if (s == stage) return;
    std::string list;
    for (const auto& s : stages) list += (list.empty() ? "" : ", ") + s;
    fail(opt, ": unknown stage '", stage, "' (stages: ", list, ")");
  }

  // Dumps if asked; returns true when the pipeline should stop here.
  bool after(const std::string& stage, bool changed, const ir::Graph& g) {
    bool dump = o_.dump_ir == "after-all" || (!o_.dump_ir.empty() && dump_stage() == stage);
    if (dump) {
      std::cerr << "// ----- IR Dump After " << stage << (changed ? "" : " (unchanged)") << " -----\n";
      if (changed) std::cerr << ir::print(g);
    }
    return o_.stop_after == stage;
  }

  int finish(const ir::Graph& g, const backend::LoweredModel* m) {
    if (o_.emit == "ir") {
      std::string text = ir::print(g);
      if (o_.output == "-") {
        std::cout << text;
      } else if (is_stream(o_.output)) {
        std::ofstream f(o_.output);
        f << text;
        f.close();
        if (!f) fail("cannot write '", o_.output, "'");
      } else {
        std::string tmp = o_.output + ".tmp";
        const backend::TempPath guard(tmp);
        std::ofstream f(tmp);
        f << text;
        f.close();
        if (!f || std::rename(tmp.c_str(), o_.output.c_str()) != 0) {
          std::remove(tmp.c_str());
          fail("cannot write '", o_.output, "'");
        }
      }
      return 0;
    }
    SDNN_CHECK(m != nullptr);
    if (o_.emit == "asm") {
      backend::write_assembly(*m, o_.output);
    } else {
      timed("link", [&] {
        backend::write_shared_object(*m, o_.output);
        return 0;
      });
    }
    if (!o_.report.empty()) write_report(g, *m, o_.report);
    if (o_.verbose) {
      size_t code = 0, weights = 0;
      for (const auto& k : m->kernels) {
        code += k.bin.code.size();
        weights += (k.bin.values.size() + k.bias.size()) * 4;
      }
      std::fprintf(stderr, "sdnnc: %zu kernels, %zu bytes of code, %zu bytes of weights, arena %lld bytes\n",
                   m->kernels.size(), code, weights, static_cast<long long>(m->arena_bytes));
    }
    return 0;
  }

  const Options& o_;
};

}  // namespace

int main(int argc, char** argv) {
  sdnn::backend::install_interrupt_cleanup();
  Options o;
  CLI::App app{"sdnnc: ahead-of-time compiler for pruned (sparse) neural networks on x86.\n"
               "Compiles an ONNX model into a self-contained shared object (C ABI: sdnn.h).",
               "sdnnc"};
  app.set_version_flag("--version", "sdnnc " SDNN_VERSION);
  app.add_option("model", o.model, "ONNX model file")->required();
  app.add_option("-o,--output", o.output, "output file (model.so; for --emit=ir '-' means stdout)")->required();
  app.add_option("--target", o.target, "instruction set: native (this CPU), avx512 or avx2")
      ->capture_default_str();
  app.add_option("--input-shape", o.input_shapes, "bind an input's shape, e.g. x=64x512 (repeatable)");
  app.add_option("--dump-ir", o.dump_ir, "print the IR to stderr: after-all or after:<stage>");
  app.add_option("--stop-after", o.stop_after, "stop after this stage (with --emit=ir)");
  app.add_option("--emit", o.emit, "what to write: so, asm (model.S + sources) or ir")->capture_default_str();
  app.add_option("--sparse-threshold", o.sparse_threshold,
                 "use the sparse kernel for weights with at least this fraction of zeros")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "threads used for compiling (0: all cores)")->capture_default_str();
  app.add_flag("--no-permute", o.no_permute, "keep the rows of sparse weights in model order (no permute-rows)");
  app.add_flag("--no-direct-conv", o.no_direct_conv,
               "run KxK convolutions with sparse weights as im2col + SpMM instead of direct sparse convolutions");
  app.add_flag("--no-masked-conv", o.no_masked_conv,
               "AVX-512: keep pad_planes + kernel + crop for 3x3 stride-1 convs on NCHW activations instead of\n"
               "masked direct convolutions reading them unpadded (and the 1x1 convs before them blocked)");
  app.add_option("--thread-split", o.thread_split,
                 "how model.so's threads share a sparse layer: auto (row tiles; each thread its own columns\n"
                 "when a layer has fewer than 12 row tiles per thread, or fewer than 24 with 256 columns each,\n"
                 "a boundary column chunk's tiles shared by two threads where the chunks do not divide evenly)\n"
                 "or rows (row tiles; columns only below 2 row tiles per thread)")
      ->capture_default_str();
  app.add_option("--tune", o.tune, "time candidate kernel plans on this machine: none, fast or full ($SDNN_TUNE)")
      ->capture_default_str();
  app.add_option("--tune-cache", o.tune_cache, "directory of cached tuning results ('' for none)")
      ->capture_default_str();
  app.add_flag("--clear-tune-cache", o.clear_tune_cache, "delete the cached tuning results first");
  app.add_option("--report", o.report, "write a JSON compile report: per layer op, shape, density, plan, time");
  app.add_flag("-v,--verbose", o.verbose, "print timings and sizes");
  try {
    // CLI11 reads `--name=` (an empty value after '=') as a missing value: an option that takes a
    // value gets it as `--name ''` (not a flag, and nothing after a bare `--`).
    std::vector<std::string> args;
    bool options_end = false;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      options_end = options_end || a == "--";
      const CLI::Option* opt = !options_end && a.size() > 3 && a.compare(0, 2, "--") == 0 && a.back() == '=' &&
                                       a.find('=') == a.size() - 1
                                   ? app.get_option_no_throw(a.substr(0, a.size() - 1))
                                   : nullptr;
      if (opt && opt->get_items_expected_min() > 0) {
        args.push_back(a.substr(0, a.size() - 1));
        args.emplace_back();
      } else {
        args.push_back(a);
      }
    }
    std::reverse(args.begin(), args.end());  // CLI11 takes the arguments in reverse order
    app.parse(std::move(args));
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "sdnnc: error: %s (see --help)\n", e.what());
    return 2;
  }
  try {
    return Driver(o).run();
  } catch (const sdnn::Error& e) {
    std::fprintf(stderr, "sdnnc: error: %s\n", one_line(e.what()).c_str());
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "sdnnc: error: out of memory\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sdnnc: error: internal error: %s\n", one_line(e.what()).c_str());
  }
  return 1;
}
