// sdnn_run.cpp — sdnn-run: runs a model.so produced by sdnnc on .npy inputs.
//
//   sdnn-run model.so --input NAME=PATH ... --output NAME=PATH ... [--threads T] [--iters N] [--info]
//
// Uses only the public C ABI (sdnn.h) and loads the model with dlopen + dlsym, exactly as a
// deployment would, so it also checks that the .so is usable on its own. --input / --output take
// NAME=PATH, or just PATH when the model has a single input / output. Inputs are .npy files
// (format 1.0-3.0, little-endian float32 or float64, C order) whose shape must equal the model's;
// outputs are written as float32 .npy. Outputs not named are computed and discarded (useful with
// --iters). With --iters N the model runs once to warm up, then N timed times, and the median and
// minimum latency are printed.
//
// Every failure prints one line `sdnn-run: error: ...` on stderr and exits non-zero (2 for bad
// usage, 1 otherwise). Output files appear only after a successful run: each is written to a
// temporary file in its target directory and renamed into place (devices and FIFOs are written in
// place); an output never replaces the model, an input or another output.
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "sdnn.h"

namespace {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + (shape.size() == 1 ? ",)" : ")");
}

std::string errno_text() { return std::strerror(errno); }

// ---------------------------------------------------------------------------------------------
// The model .so and its ABI.

// A shared object cut short (a half-copied model.so) still maps, and the loader then faults
// (SIGBUS) touching the missing pages: check that an ELF file holds every segment it declares.
void check_elf_complete(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return;  // dlopen says why
  f.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(f.tellg());
  f.seekg(0);
  Elf64_Ehdr eh{};
  if (!f.read(reinterpret_cast<char*>(&eh), sizeof eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64)
    return;  // not a 64-bit ELF: dlopen says what it is
  const auto truncated = [&] { return Error("cannot load model '" + path + "': the file is truncated (" + std::to_string(size) + " bytes)"); };
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phoff > size || uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr) > size - eh.e_phoff)
    throw truncated();
  f.seekg(static_cast<std::streamoff>(eh.e_phoff));
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph{};
    if (!f.read(reinterpret_cast<char*>(&ph), sizeof ph)) throw truncated();
    if (ph.p_type == PT_LOAD && (ph.p_offset > size || ph.p_filesz > size - ph.p_offset)) throw truncated();
  }
  if (eh.e_shoff > size || uint64_t{eh.e_shnum} * eh.e_shentsize > size - eh.e_shoff) throw truncated();
}

class ModelLibrary {
 public:
  explicit ModelLibrary(std::string path) {
    // Without a slash dlopen would search the library path instead of opening this file.
    if (path.find('/') == std::string::npos) path = "./" + path;
    check_elf_complete(path);
    handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle_) throw Error(std::string("cannot load model: ") + dlerror());
    load = symbol<decltype(&sdnn_model_load)>("sdnn_model_load");
    free_model = symbol<decltype(&sdnn_model_free)>("sdnn_model_free");
    num_inputs = symbol<decltype(&sdnn_model_num_inputs)>("sdnn_model_num_inputs");
    num_outputs = symbol<decltype(&sdnn_model_num_outputs)>("sdnn_model_num_outputs");
    input = symbol<decltype(&sdnn_model_input)>("sdnn_model_input");
    output = symbol<decltype(&sdnn_model_output)>("sdnn_model_output");
    create_context = symbol<decltype(&sdnn_context_create)>("sdnn_context_create");
    free_context = symbol<decltype(&sdnn_context_free)>("sdnn_context_free");
    run = symbol<decltype(&sdnn_run)>("sdnn_run");
    status_string = symbol<decltype(&sdnn_status_string)>("sdnn_status_string");
  }
  ~ModelLibrary() { dlclose(handle_); }
  ModelLibrary(const ModelLibrary&) = delete;
  ModelLibrary& operator=(const ModelLibrary&) = delete;

  void check(sdnn_status status, const std::string& what) const {
    if (status != SDNN_OK) throw Error(what + ": " + status_string(status));
  }

  decltype(&sdnn_model_load) load;
  decltype(&sdnn_model_free) free_model;
  decltype(&sdnn_model_num_inputs) num_inputs;
  decltype(&sdnn_model_num_outputs) num_outputs;
  decltype(&sdnn_model_input) input;
  decltype(&sdnn_model_output) output;
  decltype(&sdnn_context_create) create_context;
  decltype(&sdnn_context_free) free_context;
  decltype(&sdnn_run) run;
  decltype(&sdnn_status_string) status_string;

 private:
  template <typename Fn>
  Fn symbol(const char* name) {
    void* address = dlsym(handle_, name);
    if (!address) throw Error(std::string("not an sdnn model: missing symbol ") + name);
    return reinterpret_cast<Fn>(address);
  }
  void* handle_ = nullptr;
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> shape;
  size_t elements = 1;
  bool i64 = false;  // an int64 index input
};

TensorInfo describe(const sdnn_tensor_info* info, const char* kind, size_t index) {
  if (!info || !info->name || info->rank < 0 || (info->rank > 0 && !info->dims))
    throw Error("the model reports no valid info for " + std::string(kind) + " " +
                std::to_string(index));
  TensorInfo t;
  t.name = info->name;
  t.i64 = info->dtype == SDNN_I64;
  t.shape.assign(info->dims, info->dims + info->rank);
  for (int64_t d : t.shape) {
    if (d < 0 || (d > 0 && t.elements > std::numeric_limits<size_t>::max() / 4 / d))
      throw Error(std::string(kind) + " '" + t.name + "' has an unusable shape " +
                  shape_string(t.shape));
    t.elements *= static_cast<size_t>(d);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// .npy files.

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

// Parses the Python dict literal of an .npy header: {'descr': '<f4', 'fortran_order': False,
// 'shape': (2, 3), }.
class NpyHeaderParser {
 public:
  NpyHeaderParser(const std::string& text, const std::string& path) : text_(text), path_(path) {}

  NpyHeader parse() {
    NpyHeader header;
    bool has_descr = false, has_order = false, has_shape = false;
    expect('{');
    while (!accept('}')) {
      const std::string key = quoted();
      expect(':');
      if (key == "descr") {
        header.descr = quoted();
        has_descr = true;
      } else if (key == "fortran_order") {
        header.fortran_order = boolean();
        has_order = true;
      } else if (key == "shape") {
        header.shape = tuple();
        has_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      if (!accept(',')) {
        expect('}');
        break;
      }
    }
    if (!has_descr || !has_order || !has_shape) fail("missing descr, fortran_order or shape");
    return header;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error("'" + path_ + "' is not a valid .npy file: bad header (" + what + ")");
  }
  void skip_blanks() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool accept(char c) {
    skip_blanks();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!accept(c)) fail(std::string("expected '") + c + "'");
  }
  std::string quoted() {
    skip_blanks();
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) fail("expected a string");
    const char quote = text_[pos_++];
    const size_t end = text_.find(quote, pos_);
    if (end == std::string::npos) fail("unterminated string");
    std::string value = text_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return value;
  }
  bool boolean() {
    skip_blanks();
    for (const char* word : {"True", "False"}) {
      if (text_.compare(pos_, std::strlen(word), word) == 0) {
        pos_ += std::strlen(word);
        return word[0] == 'T';
      }
    }
    fail("expected True or False");
  }
  std::vector<int64_t> tuple() {
    std::vector<int64_t> values;
    expect('(');
    while (!accept(')')) {
      skip_blanks();
      size_t used = 0;
      long long value = 0;
      try {
        value = std::stoll(text_.substr(pos_, 32), &used);
      } catch (const std::exception&) {
        fail("bad shape");
      }
      if (value < 0) fail("negative dimension");
      pos_ += used;
      values.push_back(value);
      if (!accept(',')) {
        expect(')');
        break;
      }
    }
    return values;
  }

  const std::string& text_;
  const std::string& path_;
  size_t pos_ = 0;
};

struct Array {
  std::vector<int64_t> shape;
  std::vector<float> data;     // float files
  std::vector<int64_t> ints;   // integer files ('<i8', '<i4')
  bool is_int = false;
};

uint64_t read_le(const unsigned char* bytes, int count) {
  uint64_t value = 0;
  for (int i = count - 1; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

Array read_npy(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw Error("cannot open '" + path + "': " + errno_text());
  const auto bad = [&](const std::string& what) {
    return Error("'" + path + "' is not a valid .npy file: " + what);
  };

  unsigned char prelude[12];
  if (!file.read(reinterpret_cast<char*>(prelude), 10) ||
      std::memcmp(prelude, "\x93NUMPY", 6) != 0)
    throw bad("no .npy magic");
  const int major = prelude[6];
  size_t header_length;
  if (major == 1) {
    header_length = read_le(prelude + 8, 2);
  } else if (major == 2 || major == 3) {
    if (!file.read(reinterpret_cast<char*>(prelude + 10), 2)) throw bad("truncated header");
    header_length = read_le(prelude + 8, 4);
  } else {
    throw bad("unsupported format version " + std::to_string(major));
  }
  if (header_length > (1u << 24)) throw bad("header too long");
  std::string header_text(header_length, '\0');
  if (!file.read(header_text.data(), static_cast<std::streamsize>(header_length)))
    throw bad("truncated header");
  const NpyHeader header = NpyHeaderParser(header_text, path).parse();

  size_t item_size;
  const bool is_int = header.descr == "<i8" || header.descr == "<i4";
  if (header.descr == "<f4" || header.descr == "<i4") {
    item_size = 4;
  } else if (header.descr == "<f8" || header.descr == "<i8") {
    item_size = 8;
  } else {
    throw Error("'" + path + "' has dtype '" + header.descr +
                "'; sdnn-run reads little-endian float32 / float64 ('<f4', '<f8') and, for index "
                "inputs, int64 / int32 ('<i8', '<i4')");
  }
  if (header.fortran_order) throw Error("'" + path + "' is in Fortran order; C order is needed");

  Array array;
  array.shape = header.shape;
  size_t elements = 1;
  for (int64_t d : header.shape) {
    if (d > 0 && elements > (std::numeric_limits<size_t>::max() / 8) / static_cast<size_t>(d))
      throw bad("shape too large");
    elements *= static_cast<size_t>(d);
  }
  {  // a header may declare any shape: no allocation beyond what the file holds
    const auto here = file.tellg();
    file.seekg(0, std::ios::end);
    const auto left = static_cast<uint64_t>(file.tellg() - here);
    file.seekg(here);
    if (left / item_size < elements) throw bad("data shorter than its shape " + shape_string(header.shape) + " needs");
  }
  const auto read_exactly = [&](char* into, size_t bytes) {
    if (!file.read(into, static_cast<std::streamsize>(bytes)))
      throw bad("data shorter than its shape " + shape_string(header.shape) + " needs");
  };
  if (is_int) {
    array.is_int = true;
    array.ints.resize(elements);
    if (item_size == 8) {
      read_exactly(reinterpret_cast<char*>(array.ints.data()), elements * 8);
    } else {
      std::vector<int32_t> narrow(elements);
      read_exactly(reinterpret_cast<char*>(narrow.data()), elements * 4);
      std::copy(narrow.begin(), narrow.end(), array.ints.begin());
    }
    return array;
  }
  array.data.resize(elements);
  if (item_size == 4) {
    read_exactly(reinterpret_cast<char*>(array.data.data()), elements * 4);
  } else {
    std::vector<double> wide(elements);
    read_exactly(reinterpret_cast<char*>(wide.data()), elements * 8);
    std::copy(wide.begin(), wide.end(), array.data.begin());
  }
  return array;
}

std::string npy_bytes(const std::vector<int64_t>& shape, const float* data, size_t elements) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_string(shape) + ", }";
  // magic(6) + version(2) + length(2) + header + '\n', padded with blanks to a multiple of 64.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string bytes("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(data), elements * sizeof(float));
  return bytes;
}

// Where an output goes. A regular file (or a new one) is written to a temporary file beside it
// — beside a symbolic link's target, so the link stays — and renamed onto it: the old file stays
// whole until the new one is, and keeps its permissions. A device or FIFO (/dev/null, a pipe
// another process reads) is written in place. check() runs before the model does, so a bad path
// fails fast and nothing is created until the outputs are known.
class OutputFile {
 public:
  explicit OutputFile(std::string path) : path_(std::move(path)) {
    struct stat st{};
    if (::stat(path_.c_str(), &st) == 0) {  // an existing file (through any links)
      exists_ = true;
      device_ = st.st_dev;
      inode_ = st.st_ino;
      mode_ = st.st_mode & 07777;
      if (S_ISDIR(st.st_mode)) throw Error("cannot write output file '" + path_ + "': it is a directory");
      in_place_ = !S_ISREG(st.st_mode);
    }
    if (in_place_) {  // a device or a pipe (/dev/stdout may name one that has no path): as given
      target_ = path_;
      return;
    }
    std::error_code ec;
    namespace fs = std::filesystem;
    fs::path where = fs::absolute(path_, ec);
    // A dangling symbolic link: the file is created where it points, and the link stays.
    std::error_code missing;  // symlink_status of a path that does not exist sets it: no link then
    for (int hops = 0; !ec && !exists_ && fs::is_symlink(fs::symlink_status(where, missing)) && hops < 40; ++hops) {
      const fs::path to = fs::read_symlink(where, ec);
      where = to.is_absolute() ? to : where.parent_path() / to;
    }
    // The directory must exist as spelled ("nodir/../y.npy" is not ./y.npy).
    if (!ec && ::stat(where.parent_path().c_str(), &st) != 0)
      throw Error("cannot create output file '" + path_ + "': " + errno_text());
    if (!ec) target_ = resolve(where.string(), ec);
    if (ec) throw Error("cannot write output file '" + path_ + "': " + ec.message());
  }
  ~OutputFile() { discard(); }
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  bool in_place() const { return in_place_; }
  // The same file as `other` (an existing file with the same identity, or the same resolved path)?
  bool same_as(const std::string& other) const {
    struct stat st{};
    if (exists_ && ::stat(other.c_str(), &st) == 0 && st.st_dev == device_ && st.st_ino == inode_) return true;
    std::error_code ec;
    return resolve(other, ec) == target_ && !ec;
  }
  // Removes the temporary file, if any.
  void discard() {
    if (!temp_.empty()) std::remove(temp_.c_str());
    temp_.clear();
  }
  // Fails now if the file could not be written later (creates and removes the temporary file).
  void check() {
    if (in_place_) {
      // Not opened here: a FIFO's reader would see this open and close as an empty stream.
      if (::access(target_.c_str(), W_OK) != 0)
        throw Error("cannot write output file '" + path_ + "': " + errno_text());
      return;
    }
    create_temp();
    discard();
  }
  // Writes the bytes (to the temporary file, or in place).
  void write(const std::string& bytes) {
    if (!in_place_) create_temp();
    std::ofstream file(in_place_ ? target_ : temp_, std::ios::binary | std::ios::trunc);
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    file.close();
    if (!file) throw Error("cannot write output file '" + path_ + "': " + errno_text());
  }
  void commit() {
    if (temp_.empty()) return;
    if (std::rename(temp_.c_str(), target_.c_str()) != 0)
      throw Error("cannot write output file '" + path_ + "': " + errno_text());
    temp_.clear();
  }

 private:
  // The absolute path with links and dot components resolved as far as the path exists.
  static std::string resolve(const std::string& path, std::error_code& ec) {
    const std::filesystem::path absolute = std::filesystem::absolute(path, ec);
    return ec ? std::string() : std::filesystem::weakly_canonical(absolute, ec).string();
  }
  void create_temp() {
    std::string pattern = target_ + ".tmp.XXXXXX";
    const int fd = mkstemp(pattern.data());
    if (fd < 0) throw Error("cannot create output file '" + path_ + "': " + errno_text());
    temp_ = pattern;
    mode_t mode = mode_;
    if (!exists_) {
      const mode_t mask = umask(0);
      umask(mask);
      mode = 0666 & ~mask;
    }
    fchmod(fd, mode);
    ::close(fd);
  }

  std::string path_, target_, temp_;
  bool exists_ = false, in_place_ = false;
  dev_t device_ = 0;
  ino_t inode_ = 0;
  mode_t mode_ = 0;
};

// Holds SIGINT, SIGTERM and SIGHUP while the outputs are written and renamed into place: an
// interrupt then takes effect after them, and never leaves a temporary file behind.
class HoldInterrupts {
 public:
  HoldInterrupts() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, sig);
    sigprocmask(SIG_BLOCK, &set, &old_);
  }
  ~HoldInterrupts() { sigprocmask(SIG_SETMASK, &old_, nullptr); }
  HoldInterrupts(const HoldInterrupts&) = delete;
  HoldInterrupts& operator=(const HoldInterrupts&) = delete;

 private:
  sigset_t old_;
};

// ---------------------------------------------------------------------------------------------
// Command line.

struct Options {
  std::string model_path;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  int threads = 1;
  int iters = 1;
  bool timed = false;  // --iters given
  bool info = false;
};

// Maps NAME=PATH (or PATH alone for a single tensor) onto tensor indices; -1 = not given.
std::vector<std::string> bind_paths(const std::vector<std::string>& specs,
                                    const std::vector<TensorInfo>& tensors, const char* kind) {
  std::vector<std::string> paths(tensors.size());
  std::vector<bool> given(tensors.size(), false);
  for (const std::string& spec : specs) {
    size_t index = tensors.size();
    std::string path;
    const size_t equals = spec.find('=');
    if (equals != std::string::npos) {
      const std::string name = spec.substr(0, equals);
      for (size_t i = 0; i < tensors.size(); ++i)
        if (tensors[i].name == name) index = i;
      if (index == tensors.size()) {
        std::string names;
        for (const TensorInfo& t : tensors) names += (names.empty() ? "" : ", ") + t.name;
        throw Error(std::string("unknown ") + kind + " '" + name + "' (model " + kind + "s: " +
                    names + ")");
      }
      path = spec.substr(equals + 1);
    } else if (tensors.size() == 1) {
      index = 0;
      path = spec;
    } else {
      throw Error(std::string("--") + kind + " '" + spec + "' needs the form NAME=PATH: the model has " +
                  std::to_string(tensors.size()) + " " + kind + "s");
    }
    if (path.empty()) throw Error(std::string("--") + kind + " '" + spec + "' has an empty path");
    if (given[index]) throw Error(std::string(kind) + " '" + tensors[index].name + "' given twice");
    given[index] = true;
    paths[index] = path;
  }
  return paths;
}

void print_info(const std::string& model_path, const std::vector<TensorInfo>& inputs,
                const std::vector<TensorInfo>& outputs) {
  std::cout << "model: " << model_path << "\n";
  const auto print = [](const char* title, const std::vector<TensorInfo>& tensors) {
    std::cout << title << ":\n";
    for (const TensorInfo& t : tensors)
      std::cout << "  " << t.name << (t.i64 ? " i64 " : " f32 ") << shape_string(t.shape) << "\n";
  };
  print("inputs", inputs);
  print("outputs", outputs);
}

int run(const Options& options) {
  if (options.iters < 1 || options.iters > 10000000) throw Error("--iters must be within [1, 10000000]");

  ModelLibrary lib(options.model_path);
  sdnn_model* raw_model = nullptr;
  lib.check(lib.load(&raw_model), "cannot load model '" + options.model_path + "'");
  const std::unique_ptr<sdnn_model, decltype(lib.free_model)> model(raw_model, lib.free_model);

  std::vector<TensorInfo> inputs, outputs;
  for (size_t i = 0; i < lib.num_inputs(model.get()); ++i)
    inputs.push_back(describe(lib.input(model.get(), i), "input", i));
  for (size_t i = 0; i < lib.num_outputs(model.get()); ++i)
    outputs.push_back(describe(lib.output(model.get(), i), "output", i));

  if (options.info) {
    print_info(options.model_path, inputs, outputs);
    if (options.inputs.empty() && options.outputs.empty()) return 0;
  }

  const std::vector<std::string> input_paths = bind_paths(options.inputs, inputs, "input");
  const std::vector<std::string> output_paths = bind_paths(options.outputs, outputs, "output");
  for (size_t i = 0; i < inputs.size(); ++i)
    if (input_paths[i].empty()) throw Error("missing --input for model input '" + inputs[i].name + "'");
  // Output files: never the model, an input or another output (by identity, however spelled).
  std::vector<std::unique_ptr<OutputFile>> files(outputs.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (output_paths[i].empty()) continue;
    files[i] = std::make_unique<OutputFile>(output_paths[i]);
    if (files[i]->in_place()) continue;  // a device or pipe: may take several outputs
    const std::string what = "output '" + outputs[i].name + "' ('" + output_paths[i] + "')";
    if (files[i]->same_as(options.model_path)) throw Error(what + " would overwrite the model");
    for (size_t j = 0; j < inputs.size(); ++j)
      if (files[i]->same_as(input_paths[j]))
        throw Error(what + " would overwrite the file of input '" + inputs[j].name + "'");
    for (size_t j = 0; j < i; ++j)
      if (files[j] && !files[j]->in_place() && files[j]->same_as(output_paths[i]))
        throw Error("outputs '" + outputs[j].name + "' and '" + outputs[i].name + "' are both written to '" +
                    output_paths[i] + "'");
  }

  std::vector<std::vector<float>> input_data(inputs.size());
  std::vector<std::vector<int64_t>> input_ints(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    Array array = read_npy(input_paths[i]);
    if (array.shape != inputs[i].shape)
      throw Error("input '" + inputs[i].name + "': expected shape " + shape_string(inputs[i].shape) +
                  ", got " + shape_string(array.shape) + " from '" + input_paths[i] + "'");
    if (array.is_int != inputs[i].i64)
      throw Error("input '" + inputs[i].name + "' is " + (inputs[i].i64 ? "int64" : "float32") + " but '" +
                  input_paths[i] + "' holds " + (array.is_int ? "integers" : "floats"));
    input_data[i] = std::move(array.data);
    input_ints[i] = std::move(array.ints);
    if (input_data[i].empty()) input_data[i].resize(1);  // sdnn_run rejects null pointers
    if (input_ints[i].empty()) input_ints[i].resize(1);
  }

  // Check the output files before running, so a bad path fails fast.
  {
    const HoldInterrupts hold;  // the probe's temporary file is never left behind
    for (auto& file : files)
      if (file) file->check();
  }

  std::vector<std::vector<float>> output_data(outputs.size());
  std::vector<const float*> input_pointers;
  std::vector<float*> output_pointers;
  for (size_t i = 0; i < inputs.size(); ++i)  // an int64 input's data goes cast, as sdnn.h says
    input_pointers.push_back(inputs[i].i64 ? reinterpret_cast<const float*>(input_ints[i].data())
                                           : input_data[i].data());
  for (size_t i = 0; i < outputs.size(); ++i) {
    output_data[i].resize(std::max<size_t>(outputs[i].elements, 1));  // never a null pointer
    output_pointers.push_back(output_data[i].data());
  }

  sdnn_context* raw_context = nullptr;
  lib.check(lib.create_context(model.get(), options.threads, &raw_context),
            "cannot create a context with " + std::to_string(options.threads) + " threads");
  const std::unique_ptr<sdnn_context, decltype(lib.free_context)> context(raw_context,
                                                                          lib.free_context);
  const auto run_once = [&] {
    const bool has_indices = std::any_of(inputs.begin(), inputs.end(), [](const TensorInfo& t) { return t.i64; });
    lib.check(lib.run(context.get(), input_pointers.data(), output_pointers.data()),
              has_indices ? "sdnn_run failed (is every index in the int64 inputs within its table?)" : "sdnn_run failed");
  };

  run_once();
  if (options.timed) {
    std::vector<double> micros;
    for (int i = 0; i < options.iters; ++i) {
      const auto start = std::chrono::steady_clock::now();
      run_once();
      const auto stop = std::chrono::steady_clock::now();
      micros.push_back(std::chrono::duration<double, std::micro>(stop - start).count());
    }
    std::sort(micros.begin(), micros.end());
    const size_t n = micros.size();
    const double median = n % 2 ? micros[n / 2] : (micros[n / 2 - 1] + micros[n / 2]) / 2;
    std::printf("latency over %zu runs (%d threads): median %.1f us, min %.1f us\n", n,
                options.threads, median, micros.front());
  }

  // Devices and FIFOs first, interruptible (a FIFO's write waits for a reader); then the files
  // renamed into place, with interrupts held until they all are.
  const auto write = [&](size_t i) {
    files[i]->write(npy_bytes(outputs[i].shape, output_data[i].data(), outputs[i].elements));
  };
  for (size_t i = 0; i < outputs.size(); ++i)
    if (files[i] && files[i]->in_place()) write(i);
  const HoldInterrupts hold;
  try {
    for (size_t i = 0; i < outputs.size(); ++i)
      if (files[i] && !files[i]->in_place()) write(i);
    for (auto& file : files)
      if (file) file->commit();
  } catch (...) {  // removed before the held interrupts are delivered
    for (auto& file : files)
      if (file) file->discard();
    throw;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Runs a model.so compiled by sdnnc on .npy inputs through its C ABI.", "sdnn-run"};
  app.set_version_flag("--version", "sdnn-run " SDNN_VERSION);
  Options options;
  app.add_option("model", options.model_path, "model .so produced by sdnnc")->required();
  app.add_option("--input,-i", options.inputs,
                 "NAME=PATH of an input .npy (float32/float64); PATH alone for a single input")
      ->allow_extra_args(false);
  app.add_option("--output,-o", options.outputs,
                 "NAME=PATH of an output .npy to write; PATH alone for a single output")
      ->allow_extra_args(false);
  app.add_option("--threads,-t", options.threads, "threads of the context (1..1024)")
      ->capture_default_str();
  CLI::Option* iters = app.add_option(
      "--iters,-n", options.iters, "time N runs after one warm-up; print median and min latency");
  app.add_flag("--info", options.info, "print the model's inputs and outputs");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "sdnn-run: error: " << e.what() << " (see --help)\n";
    return 2;
  }
  options.timed = iters->count() > 0;

  try {
    return run(options);
  } catch (const std::exception& e) {
    std::cerr << "sdnn-run: error: " << e.what() << "\n";
    return 1;
  }
}
