"""Hand-written lock files and histories in the shapes real tools write them, good and broken."""

from __future__ import annotations

from pathlib import Path

PYTHON_URL = "https://conda.example.org/conda-forge/linux-64/python-3.12.8-h9e4cc4f_1_cpython.conda"
PYTHON_MD5 = "7fd2fd79436d9b473812f14e86746844"
PYTHON_SHA256 = "3f0e1a6a2d5f3e6a2b8c6f1d0e7f4c2a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f"
TZDATA_URL = "https://conda.example.org/conda-forge/noarch/tzdata-2025a-h78e105d_0.conda"
TZDATA_MD5 = "dbcace4706afdfb7eb891f7b37d07c04"
TZDATA_SHA256 = "c4b1ae8a2931fe9b274c44af29c5475a85b37693999f8c792dad0f8c6734b1de"
REQUESTS_URL = (
    "https://files.example.org/packages/f9/9b/"
    "335f9764261e915ed497fcdeb11df5dfd6f7bf257d4a6a2a686d80da4d54/requests-2.32.3-py3-none-any.whl"
)
REQUESTS_SHA256 = "70761cfe03c773ceb22aa2f671b4757976145175cdfca038c02654d061d6dcc6"

# What `conda-lock lock -p linux-64` writes (format version 1), trimmed to three packages.
CONDA_LOCK_V1 = f"""\
version: 1
metadata:
  content_hash:
    linux-64: 0c0b4f1b2e4f2d3ad6d0e1c1d8d9a2f0e6b3c5a7d9e1f3a5b7c9d1e3f5a7b9c1
  channels:
  - url: conda-forge
    used_env_vars: []
  platforms:
  - linux-64
  sources:
  - environment.yml
  time_metadata: null
  git_metadata: null
  inputs_metadata: null
  custom_metadata: null
package:
- name: python
  version: 3.12.8
  manager: conda
  platform: linux-64
  dependencies:
    tzdata: ''
    libffi: '>=3.4,<4.0a0'
  url: {PYTHON_URL}
  hash:
    md5: {PYTHON_MD5}
    sha256: {PYTHON_SHA256}
  category: main
  optional: false
- name: tzdata
  version: 2025a
  manager: conda
  platform: linux-64
  dependencies: {{}}
  url: {TZDATA_URL}
  hash:
    md5: {TZDATA_MD5}
    sha256: {TZDATA_SHA256}
  category: main
  optional: false
- name: requests
  version: 2.32.3
  manager: pip
  platform: linux-64
  dependencies:
    charset-normalizer: '>=2,<4'
  url: {REQUESTS_URL}
  hash:
    sha256: {REQUESTS_SHA256}
  category: main
  optional: false
"""

# The same lock made on a Mac: nothing in it for linux-64.
CONDA_LOCK_V1_OSX = (
    CONDA_LOCK_V1.replace("platform: linux-64", "platform: osx-arm64")
    .replace("  - linux-64\n", "  - osx-arm64\n")
    .replace("    linux-64: ", "    osx-arm64: ")
    .replace("/linux-64/", "/osx-arm64/")
)

# pixi.lock format version 6 (pixi 0.40 - 0.5x): two environments, two platforms, a PyPI package.
PIXI_V6 = f"""\
version: 6
environments:
  default:
    channels:
    - url: https://conda.example.org/conda-forge/
    indexes:
    - https://index.example.org/simple
    packages:
      linux-64:
      - conda: {PYTHON_URL}
      - conda: {TZDATA_URL}
      - pypi: {REQUESTS_URL}
      osx-arm64:
      - conda: {TZDATA_URL}
  docs:
    channels:
    - url: https://conda.example.org/conda-forge/
    packages:
      linux-64:
      - conda: {TZDATA_URL}
packages:
- conda: {PYTHON_URL}
  sha256: {PYTHON_SHA256}
  md5: {PYTHON_MD5}
  depends:
  - tzdata
  license: Python-2.0
  size: 31565686
  timestamp: 1733410597922
- conda: {TZDATA_URL}
  sha256: {TZDATA_SHA256}
  md5: {TZDATA_MD5}
  license: LicenseRef-Public-Domain
  size: 122921
  timestamp: 1737119101255
- pypi: {REQUESTS_URL}
  name: requests
  version: 2.32.3
  sha256: {REQUESTS_SHA256}
  requires_dist:
  - charset-normalizer>=2,<4
  requires_python: '>=3.8'
"""

# `conda list --explicit --md5` style, one line with a sha256 fragment instead (`--sha256`).
EXPLICIT = f"""\
# This file may be used to create an environment using:
# $ conda create --name <env> --file <this file>
# platform: linux-64
# created-by: conda 24.11.3
@EXPLICIT
{PYTHON_URL}#sha256:{PYTHON_SHA256}
{TZDATA_URL}#{TZDATA_MD5}
"""

# An explicit file an editor mangled: the good lines must survive, each bad one be named.
EXPLICIT_WITH_BAD_LINES = f"""\
# platform: linux-64
@EXPLICIT
{PYTHON_URL}#{PYTHON_MD5}
numpy>=1.26
https://conda.example.org/conda-forge/linux-64/broken.conda
{TZDATA_URL}#not-a-hash
{TZDATA_URL}#{TZDATA_MD5}
"""

EXPLICIT_OSX = """\
# platform: osx-arm64
@EXPLICIT
https://conda.example.org/conda-forge/osx-arm64/python-3.12.8-hc22306f_1_cpython.conda#f0e2ccec7e0b3b9d2f6c2f2dc8e4d9b7
"""

# libmamba (micromamba, mamba 2) history: it writes a fixed `# conda version: 3.8.0`, full channel
# URLs in dists and double-quoted spec lists, and a `# neutered specs:` line.
MICROMAMBA_HISTORY = """\
==> 2024-05-02 08:15:42 <==
# cmd: micromamba create -p /nfs/cpkgs/envs/mlpy python=3.12 numpy -c conda-forge
# conda version: 3.8.0
+https://conda.example.org/conda-forge/linux-64::python-3.12.3-hab00c5b_0_cpython
+https://conda.example.org/conda-forge/linux-64::numpy-1.26.4-py312heda63a1_0
# update specs: ["python=3.12", "numpy"]
==> 2024-06-11 17:02:09 <==
# cmd: micromamba install -p /nfs/cpkgs/envs/mlpy numpy=2
# conda version: 3.8.0
-https://conda.example.org/conda-forge/linux-64::numpy-1.26.4-py312heda63a1_0
+https://conda.example.org/conda-forge/linux-64::numpy-2.0.0-py312h22e1c76_0
# update specs: ["numpy=2"]
# neutered specs: ["python=3.12.3"]
"""

# mamba 1.x runs through conda's History class: conda's version, mamba's command line.
MAMBA1_HISTORY = """\
==> 2023-09-20 10:01:02 <==
# cmd: /nfs/cpkgs/anaconda3_linux/bin/mamba install -n isis4.1.1 -c usgs-astrogeology isis=4.1.1
# conda version: 23.3.1
+usgs-astrogeology/linux-64::isis-4.1.1-0
# update specs: ['isis=4.1.1']
==> 2023-09-21 09:00:00 <==
# cmd: /nfs/cpkgs/anaconda3_linux/bin/conda remove -n isis4.1.1 isis
# conda version: 23.3.1
-usgs-astrogeology/linux-64::isis-4.1.1-0
# remove specs: ['isis']
"""

# A history someone appended junk to (a log pasted by mistake, a half-written block, binary noise).
GARBLED_HISTORY = """\
this line came before any block
==> 2025-03-14 13:51:04 <==
# cmd: conda create -p /nfs/cpkgs/envs/isis4.3.0 isis=4.3.0
# conda version: 24.1.2
+conda-forge/linux-64::isis-4.3.0-h0_0
# update specs: ['isis=4.3.0']
==> yesterday at noon <==
# cmd: conda install -p /nfs/cpkgs/envs/isis4.3.0 numpy
+conda-forge/linux-64::numpy-2.0.0-py312h0_0
Traceback (most recent call last):
  File "/opt/conda/bin/conda", line 12, in <module>
CondaLockError: lock held by pid 4242
+not a dist line
# update specs: ['numpy'
==> 2025-03-20 09:00:00 <==
# cmd: conda install -p /nfs/cpkgs/envs/isis4.3.0 scipy
# conda version: 24.1.2
+conda-forge/linux-64::scipy-1.14.1-py312h0_0
# update specs: ['scipy']
"""


def write(directory: Path, name: str, text: str) -> Path:
    """Write ``text`` to ``directory/name``; return the path."""
    path = directory / name
    path.write_text(text)
    return path
