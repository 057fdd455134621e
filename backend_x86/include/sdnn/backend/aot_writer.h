// aot_writer.h — LoweredModel -> model.so (or the assembly and plan sources that make it).
//
// Kernel code and weights go into binary files pulled in by `.incbin` from a small assembly
// file (one global hidden symbol per kernel and per weight array, .p2align 6); the plan is a
// generated C file of sdnn_plan.h structs. Both are compiled and linked with the prebuilt PIC
// runtime archive by the system C compiler. The output appears atomically (temp + rename); on
// any failure no output file is left behind.
#pragma once

#include <string>

#include "sdnn/backend/lower.h"

namespace sdnn::backend {

// Interrupts (SIGINT, SIGTERM, SIGHUP) while temporaries exist: install_interrupt_cleanup() (once,
// sdnnc's main) makes them stop a running C compiler, remove every path a TempPath has registered
// (the model.so being linked, the link's sources, a report or IR written aside), and then end the
// process as the signal would have. Nothing half-written stays next to the output.
void install_interrupt_cleanup();
class TempPath {
 public:
  // Registers `path` (a file, or with dir an empty-once-its-files-are-gone directory) until
  // destruction; registering does not create anything.
  explicit TempPath(const std::string& path, bool dir = false);
  ~TempPath();
  TempPath(const TempPath&) = delete;
  TempPath& operator=(const TempPath&) = delete;

 private:
  int slot_ = -1;
};

// Throws sdnn::Error naming the path when `path` cannot be created (checked before the long work).
void check_output_writable(const std::string& path);

void write_shared_object(const LoweredModel& m, const std::string& path);

// --emit=asm: writes `path` (the .S) plus `path`.plan.c, `path`.code.bin and `path`.weights.bin.
void write_assembly(const LoweredModel& m, const std::string& path);

}  // namespace sdnn::backend
