"""pytest suite of the package boundary of groupnorm.torch: `groupnorm` never imports torch, and groupnorm.torch
without its operator library fails with an ImportError saying how to build it. Run under ctest; by hand:

    PYTHONPATH=build/<dir>/python /usr/bin/python3 -m pytest tests/python/test_torch_package.py
"""
import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("torch", reason="PyTorch is not installed (Debian: apt-get install python3-torch)")


def run_python(code, pythonpath):
    env = dict(os.environ, PYTHONPATH=pythonpath, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


def package_directory():
    spec = importlib.util.find_spec("groupnorm")  # locates the package without importing it
    assert spec is not None, "groupnorm is not on PYTHONPATH"
    return spec.submodule_search_locations[0]


def test_importing_groupnorm_leaves_torch_unloaded():
    done = run_python("import sys, groupnorm; print('torch' in sys.modules)", os.environ.get("PYTHONPATH", ""))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_groupnorm_torch_without_its_operator_library_raises_import_error_saying_how_to_build_it(tmp_path):
    # A copy of the package's torch.py in a package without libgroupnorm_torch.so beside it.
    package = tmp_path / "groupnorm"
    package.mkdir()
    (package / "__init__.py").write_text("")
    shutil.copy(os.path.join(package_directory(), "torch.py"), package / "torch.py")
    done = run_python("import groupnorm.torch", str(tmp_path))
    assert done.returncode != 0
    last_line = done.stderr.strip().splitlines()[-1]
    assert last_line.startswith("ImportError: groupnorm.torch needs the libtorch operator library"), done.stderr
    assert "libtorch-dev" in last_line and "-DGROUPNORM_BUILD_TORCH=ON" in last_line
