# Sourced by the clisc scripts: the process environment that LibTorch and OpenBLAS need at exec
# time. Without OPENBLAS_CORETYPE the OpenBLAS shipped with Debian 12 may pick a slow or
# miscomputing kernel on some virtual CPUs.
export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
