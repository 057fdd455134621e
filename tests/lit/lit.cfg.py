# lit configuration for sdnnc: *.test files under frontend/, passes/, backend/.
# Substitutions: %sdnnc, %sdnn-run, %python, %gen (writes a named test model: %gen NAME OUT),
# %make-model (models/make_model.py NAME OUT [--key value ...]),
# %objdump, %cmake, %builddir (the build tree), %inputs (tests/lit/Inputs); FileCheck and not come from LLVM 14's bin directory on PATH.
import os

import lit.formats

config.name = "sdnnc"
config.test_format = lit.formats.ShTest(execute_external=True)
config.suffixes = [".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = config.sdnn_obj_root
config.excludes = ["Inputs"]

config.substitutions.append(("%sdnnc", config.sdnnc))
config.substitutions.append(("%sdnn-run", config.sdnn_run))
config.substitutions.append(("%gen", "%s %s" % (config.python, os.path.join(config.test_source_root, "Inputs", "gen.py"))))
config.substitutions.append(("%make-model", "%s %s" % (config.python, os.path.join(
    os.path.dirname(os.path.dirname(config.test_source_root)), "models", "make_model.py"))))
config.substitutions.append(("%python", config.python))
config.substitutions.append(("%objdump", config.objdump))
config.substitutions.append(("%cmake", config.cmake))
config.substitutions.append(("%builddir", config.sdnn_build_root))
config.substitutions.append(("%inputs", os.path.join(config.test_source_root, "Inputs")))
# Feature "avx512": this CPU runs AVX-512 models (tests that run them say REQUIRES: avx512).
try:
    with open("/proc/cpuinfo") as f:
        if any(line.startswith("flags") and " avx512f" in line for line in f):
            config.available_features.add("avx512")
except OSError:
    pass
config.environment["PATH"] = os.pathsep.join([config.llvm_bin, os.environ.get("PATH", "")])
# Reproducible plans (the tuner's choice depends on timings); tests that tune say so.
config.environment["SDNN_TUNE"] = "none"
for var in ("TMPDIR", "HOME"):
    if var in os.environ:
        config.environment[var] = os.environ[var]
