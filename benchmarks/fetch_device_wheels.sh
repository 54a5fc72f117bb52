#!/usr/bin/env bash
# Wheels the GPU machine's image lacks for benchmarks/gpu_session.sh (pure Python, ~12 MB), into .whl/
# (git-ignored through .git/info/exclude). Run once here, where pip reaches PyPI; the device has no network.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  pyiqa==0.1.16 open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 setuptools==80.10.2
# openai-clip (pyiqa's CLIP-IQA backend) is published as an sdist only: build its pure-Python wheel here.
python3 -m pip wheel -q --no-deps openai-clip==1.0.1 -w .whl
ls -l .whl
