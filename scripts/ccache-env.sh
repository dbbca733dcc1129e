# Sourced by build.sh and test.sh: compile through ccache when it is installed (setup.sh installs
# it), with paths taken relative to the checkout so every clone of the repo shares the cache.
# A launcher already set in the environment wins.
if command -v ccache >/dev/null 2>&1; then
  export CMAKE_CXX_COMPILER_LAUNCHER="${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}"
  export CMAKE_C_COMPILER_LAUNCHER="${CMAKE_C_COMPILER_LAUNCHER:-ccache}"
  export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
  export CCACHE_NOHASHDIR=1
fi
