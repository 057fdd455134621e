// test_sdnn_run.cpp — sdnn-run end to end on the hand-made model .so files.
//
// Writes .npy inputs (the bytes are produced here: no numpy needed), runs the sdnn-run binary,
// and checks outputs against the double-precision reference; then the error paths: each must
// exit non-zero with exactly one `sdnn-run: error: ...` line on stderr and leave no output file
// (nor temporary) behind, and never clobber an existing output.
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "reference.hpp"

namespace fs = std::filesystem;
using sdnn_test::conv_reference;
using sdnn_test::first_mismatch;
using sdnn_test::make_input;
using sdnn_test::mlp_reference;

namespace {

std::string shape_tuple(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (int64_t d : shape) text += std::to_string(d) + ", ";
  return text + ")";
}

struct NpyOptions {
  const char* descr = "<f4";
  bool fortran_order = false;
  int version = 1;
  size_t truncate_bytes = 0; /* drop this many bytes from the end */
};

void write_npy(const fs::path& path, const std::vector<int64_t>& shape, const std::vector<float>& data,
               const NpyOptions& options = {}) {
  std::string header = std::string("{'descr': '") + options.descr + "', 'fortran_order': " +
                       (options.fortran_order ? "True" : "False") + ", 'shape': " +
                       shape_tuple(shape) + ", }";
  const size_t prelude = options.version == 1 ? 10 : 12;
  header.append((64 - (prelude + header.size() + 1) % 64) % 64, ' ');
  header += '\n';
  std::string bytes("\x93NUMPY", 6);
  bytes += static_cast<char>(options.version);
  bytes += '\0';
  for (size_t i = 0; i < prelude - 8; ++i) bytes += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  bytes += header;
  if (std::string(options.descr) == "<f8") {
    for (float v : data) {
      const double d = v;
      bytes.append(reinterpret_cast<const char*>(&d), 8);
    }
  } else {
    bytes.append(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float));
  }
  bytes.resize(bytes.size() - options.truncate_bytes);
  std::ofstream(path, std::ios::binary) << bytes;
}

struct Npy {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// Reads a float32 .npy as sdnn-run writes it (format 1.0).
Npy read_npy(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  REQUIRE(bytes.size() >= 10);
  REQUIRE(bytes.compare(0, 8, std::string("\x93NUMPY\x01\x00", 8)) == 0);
  const size_t header_size = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9]) << 8;
  REQUIRE((10 + header_size) % 64 == 0);
  const std::string header = bytes.substr(10, header_size);
  REQUIRE(header.find("'descr': '<f4'") != std::string::npos);
  REQUIRE(header.find("'fortran_order': False") != std::string::npos);
  std::smatch match;
  REQUIRE(std::regex_search(header, match, std::regex("'shape': \\(([0-9, ]*)\\)")));
  Npy npy;
  std::stringstream dims(match[1].str());
  for (std::string item; std::getline(dims, item, ',');)
    if (item.find_first_not_of(' ') != std::string::npos) npy.shape.push_back(std::stoll(item));
  const size_t count = (bytes.size() - 10 - header_size) / sizeof(float);
  npy.data.resize(count);
  std::memcpy(npy.data.data(), bytes.data() + 10 + header_size, count * sizeof(float));
  return npy;
}

struct Result {
  int exit_code;
  std::string out, err;
};

std::string slurp(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
}

// A scratch directory, removed at the end of the test.
class Scratch {
 public:
  Scratch() {
    std::string pattern = (fs::temp_directory_path() / "sdnn-run-test.XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    dir_ = pattern;
  }
  ~Scratch() { fs::remove_all(dir_); }
  fs::path operator/(const std::string& name) const { return dir_ / name; }
  std::string str(const std::string& name) const { return (dir_ / name).string(); }

  // Runs sdnn-run with `args` (already shell-quoted where needed), optionally with an environment
  // prefix such as "SDNN_CPU_DISABLE=avx512f".
  Result sdnn_run(const std::string& args, const std::string& env = "") const {
    const fs::path out = dir_ / ".stdout", err = dir_ / ".stderr";
    const std::string command = env + " " + SDNN_RUN_EXE + " " + args + " >" + out.string() + " 2>" + err.string();
    const int status = std::system(command.c_str());
    Result r{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
    fs::remove(out);
    fs::remove(err);
    return r;
  }

  std::set<std::string> files() const {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) names.insert(entry.path().filename().string());
    return names;
  }

 private:
  fs::path dir_;
};

const std::vector<int64_t> kMlpShape = {TM_MLP_TOKENS, TM_MLP_FEATURES};
const std::vector<int64_t> kConvInShape = {TM_CONV_BATCH, TM_CONV_IN, TM_CONV_H, TM_CONV_W};
const std::vector<int64_t> kConvOutShape = {TM_CONV_BATCH, TM_CONV_OUT, TM_CONV_H, TM_CONV_W};

// Fails unless `r` is one error line with `message` in it and a non-zero exit.
void check_error(const Result& r, const std::string& message) {
  INFO("stderr: " << r.err);
  CHECK(r.exit_code != 0);
  CHECK(r.err.rfind("sdnn-run: error: ", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  CHECK(r.err.find(message) != std::string::npos);
}

}  // namespace

TEST_CASE("sdnn-run runs the mlp model", "[sdnn-run]") {
  Scratch dir;
  const std::vector<float> x = make_input(TM_MLP_TOKENS * TM_MLP_FEATURES, 5);
  write_npy(dir / "x.npy", kMlpShape, x);
  const Result r = dir.sdnn_run(std::string(SDNN_TEST_MODEL_MLP) + " --input " + dir.str("x.npy") +
                                " --output y=" + dir.str("y.npy") + " --output x_copy=" +
                                dir.str("copy.npy") + " --threads 2");
  INFO("stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  const Npy y = read_npy(dir / "y.npy");
  CHECK(y.shape == kMlpShape);
  CHECK(first_mismatch(y.data, mlp_reference(x)) == -1);
  const Npy copy = read_npy(dir / "copy.npy");
  CHECK(copy.shape == kMlpShape);
  CHECK(first_mismatch(copy.data, x) == -1);
  CHECK(dir.files() == std::set<std::string>{"x.npy", "y.npy", "copy.npy"});
  CHECK((fs::status(dir / "y.npy").permissions() & fs::perms::owner_read) != fs::perms::none);
}

TEST_CASE("sdnn-run reads float64 and format 2.0 inputs", "[sdnn-run]") {
  Scratch dir;
  const std::vector<float> img = make_input(TM_CONV_BATCH * TM_CONV_IN * TM_CONV_HW, 6);
  NpyOptions f64;
  f64.descr = "<f8";
  f64.version = 2;
  write_npy(dir / "img.npy", kConvInShape, img, f64);
  const Result r = dir.sdnn_run(std::string(SDNN_TEST_MODEL_CONV) + " --input img=" +
                                dir.str("img.npy") + " --output " + dir.str("out.npy") + " --threads 3");
  INFO("stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  const Npy out = read_npy(dir / "out.npy");
  CHECK(out.shape == kConvOutShape);
  CHECK(first_mismatch(out.data, conv_reference(img)) == -1);
}

TEST_CASE("sdnn-run --info and --iters", "[sdnn-run]") {
  Scratch dir;
  const Result info = dir.sdnn_run(std::string(SDNN_TEST_MODEL_MLP) + " --info");
  REQUIRE(info.exit_code == 0);
  CHECK(info.out.find("x f32 (301, 75)") != std::string::npos);
  CHECK(info.out.find("y f32 (301, 75)") != std::string::npos);
  CHECK(info.out.find("x_copy f32 (301, 75)") != std::string::npos);

  write_npy(dir / "img.npy", kConvInShape, make_input(TM_CONV_BATCH * TM_CONV_IN * TM_CONV_HW, 1));
  const Result timed =
      dir.sdnn_run(std::string(SDNN_TEST_MODEL_CONV) + " -i " + dir.str("img.npy") + " --iters 3");
  INFO("stderr: " << timed.err);
  REQUIRE(timed.exit_code == 0);
  CHECK(std::regex_search(timed.out, std::regex("over 3 runs .*median [0-9.]+ us, min [0-9.]+ us")));
  CHECK(dir.files() == std::set<std::string>{"img.npy"});
}

TEST_CASE("sdnn-run reports errors on one line and writes nothing", "[sdnn-run]") {
  Scratch dir;
  const std::string mlp = SDNN_TEST_MODEL_MLP;
  const std::vector<float> x = make_input(TM_MLP_TOKENS * TM_MLP_FEATURES, 2);
  write_npy(dir / "x.npy", kMlpShape, x);
  write_npy(dir / "x_t.npy", {TM_MLP_FEATURES, TM_MLP_TOKENS}, x);
  NpyOptions half;
  half.descr = "<f2";
  write_npy(dir / "x_f16.npy", kMlpShape, x, half);
  NpyOptions fortran;
  fortran.fortran_order = true;
  write_npy(dir / "x_fortran.npy", kMlpShape, x, fortran);
  NpyOptions truncated;
  truncated.truncate_bytes = 4;
  write_npy(dir / "x_short.npy", kMlpShape, x, truncated);
  std::ofstream(dir / "not_npy.npy") << "hello";
  const std::set<std::string> inputs = dir.files();
  const std::string y = " --output y=" + dir.str("y.npy");

  SECTION("wrong shape") {
    check_error(dir.sdnn_run(mlp + " --input " + dir.str("x_t.npy") + y),
                "input 'x': expected shape (301, 75), got (75, 301)");
  }
  SECTION("missing input file") {
    check_error(dir.sdnn_run(mlp + " --input x=" + dir.str("nope.npy") + y), "cannot open");
  }
  SECTION("unknown input name") {
    check_error(dir.sdnn_run(mlp + " --input bogus=" + dir.str("x.npy") + y), "unknown input 'bogus'");
  }
  SECTION("missing input") { check_error(dir.sdnn_run(mlp + y), "missing --input for model input 'x'"); }
  SECTION("unknown output name") {
    check_error(dir.sdnn_run(mlp + " -i " + dir.str("x.npy") + " --output z=" + dir.str("z.npy")),
                "unknown output 'z'");
  }
  SECTION("output without a name on a two-output model") {
    check_error(dir.sdnn_run(mlp + " -i " + dir.str("x.npy") + " --output " + dir.str("y.npy")),
                "needs the form NAME=PATH");
  }
  SECTION("bad .npy files") {
    check_error(dir.sdnn_run(mlp + " -i " + dir.str("x_f16.npy") + y), "dtype '<f2'");
    check_error(dir.sdnn_run(mlp + " -i " + dir.str("x_fortran.npy") + y), "Fortran order");
    check_error(dir.sdnn_run(mlp + " -i " + dir.str("x_short.npy") + y), "data shorter");
    check_error(dir.sdnn_run(mlp + " -i " + dir.str("not_npy.npy") + y), "not a valid .npy");
  }
  SECTION("model file missing") {
    check_error(dir.sdnn_run(dir.str("missing.so") + " -i " + dir.str("x.npy")), "cannot load model");
  }
  SECTION("output directory missing") {
    check_error(dir.sdnn_run(mlp + " -i " + dir.str("x.npy") + " --output y=" + dir.str("no/y.npy")),
                "cannot create output file");
  }
  SECTION("status codes of the ABI") {
    check_error(dir.sdnn_run(mlp + " -i " + dir.str("x.npy") + y + " --threads 0"), "invalid argument");
    check_error(dir.sdnn_run(std::string(SDNN_TEST_MODEL_AVX512) + " --info", "SDNN_CPU_DISABLE=avx512f"),
                "unsupported CPU");
  }
  SECTION("bad usage") {
    const Result r = dir.sdnn_run(mlp + " --bogus");
    check_error(r, "--bogus");
    CHECK(r.exit_code == 2);
    check_error(dir.sdnn_run(mlp + " -i " + dir.str("x.npy") + " --iters 0"), "--iters");
  }
  CHECK(dir.files() == inputs);
}

TEST_CASE("a failed sdnn-run leaves an existing output untouched", "[sdnn-run]") {
  Scratch dir;
  write_npy(dir / "x.npy", kMlpShape, make_input(TM_MLP_TOKENS * TM_MLP_FEATURES, 3));
  std::ofstream(dir / "y.npy") << "previous";
  check_error(dir.sdnn_run(std::string(SDNN_TEST_MODEL_MLP) + " -i " + dir.str("x.npy") +
                           " --output y=" + dir.str("y.npy") + " --threads 0"),
              "cannot create a context with 0 threads: invalid argument");
  CHECK(slurp(dir / "y.npy") == "previous");
  CHECK(dir.files() == std::set<std::string>{"x.npy", "y.npy"});
}
