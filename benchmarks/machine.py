"""What a benchmark ran on: CPU model, cores, load, BLAS and library versions.

Figures measured on one CPU do not carry over to another (BENCHMARKS.md records an AMD EPYC
and an Intel Xeon disagreeing by 4× on the synthetic renderer), so every benchmark prints
`describe()` next to its numbers. NumPy and TensorFlow are imported only if the caller
already imported them, so this module never changes what a benchmark measures.
"""

import os
import platform
import sys


def cpu_model():
    """The CPU model string from /proc/cpuinfo (Linux), else `platform.processor()`."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags():
    """The SIMD extensions that matter for NumPy/BLAS/oneDNN kernels."""
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "fma")
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [w for w in wanted if w in flags]
    except OSError:
        pass
    return []


def blas():
    """NumPy's BLAS: name, version, kernel (`threadpoolctl` when installed), thread count."""
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return "numpy not imported"
    try:
        from threadpoolctl import threadpool_info

        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            i = infos[0]
            return (
                f"{i.get('internal_api')} {i.get('version')} "
                f"({i.get('architecture')}, {i.get('num_threads')} threads)"
            )
    except ImportError:
        pass
    try:
        config = numpy.show_config(mode="dicts")
        b = config["Build Dependencies"]["blas"]
        return f"{b.get('name')} {b.get('version')}"
    except Exception:  # show_config's layout differs across NumPy versions
        return "unknown"


def describe():
    """One line: CPU, cores, SIMD, 1-minute load, BLAS, library versions, BLAS env."""
    parts = [
        f"cpu={cpu_model()!r}",
        f"cores={os.cpu_count()}",
        f"simd={','.join(cpu_flags()) or 'none'}",
        f"load1={os.getloadavg()[0]:.2f}",
        f"blas={blas()}",
        f"python={platform.python_version()}",
    ]
    for name in ("numpy", "tensorflow"):
        module = sys.modules.get(name)
        if module is not None:
            parts.append(f"{name}={module.__version__}")
    env = [
        f"{k}={os.environ[k]}"
        for k in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "TF_ENABLE_ONEDNN_OPTS")
        if k in os.environ
    ]
    if env:
        parts.append("env:" + ",".join(env))
    return "machine: " + " ".join(parts)


if __name__ == "__main__":
    import numpy  # noqa: F401

    print(describe())


def rss_mib():
    """This process's current resident set in MiB (Linux /proc; NaN elsewhere). The peak
    is getrusage's ru_maxrss; this is the value now, for memory held before and after."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")
