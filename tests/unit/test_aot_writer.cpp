// test_aot_writer.cpp — what the model.so writer leaves behind when sdnnc is interrupted.
#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "sdnn/backend/aot_writer.h"

namespace {

bool exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

void touch(const std::string& p) {
  if (FILE* f = std::fopen(p.c_str(), "w")) std::fclose(f);
}

}  // namespace

TEST_CASE("an interrupt removes the registered temporaries and ends the process by its signal", "[aot]") {
  char tmpl[] = "/tmp/sdnn-interrupt-test-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  const std::string dir = tmpl, partial = dir + "/model.so.tmp.1", sub = dir + "/link", source = sub + "/model.S",
                    kept = dir + "/kept", done = dir + "/done";
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
    INFO("signal " << sig);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {  // the child: a compile in the middle of writing its output
      sdnn::backend::install_interrupt_cleanup();
      mkdir(sub.c_str(), 0755);
      sdnn::backend::TempPath d(sub, true), f(partial), s(source);
      touch(partial);
      touch(source);
      {
        sdnn::backend::TempPath k(kept);  // no longer registered when the signal comes
        touch(kept);
      }
      raise(sig);
      touch(done);  // not reached: the handler ends the process by the signal
      _exit(0);
    }
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status));
    if (WIFSIGNALED(status)) CHECK(WTERMSIG(status) == sig);
    CHECK_FALSE(exists(partial));
    CHECK_FALSE(exists(source));
    CHECK_FALSE(exists(sub));
    CHECK(exists(kept));
    CHECK_FALSE(exists(done));
    std::remove(kept.c_str());
  }
  rmdir(dir.c_str());
}
