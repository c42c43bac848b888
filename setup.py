"""Build of the optional C extension ethp2p._speedups (everything else is in pyproject.toml).

The extension is ``optional``: if it does not compile, ethp2p installs and runs in pure
Python (ethp2p.accel reports which is in use).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ethp2p._speedups",
            sources=["src/ethp2p/_speedups.c"],
            libraries=["dl"],
            extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ],
)
