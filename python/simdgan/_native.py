"""_native.py: libsimdgan through ctypes: finding the library, and the C
API's structs and signatures (include/simdgan.h, API version 1).

The library is looked for in this order:
  1. $SIMDGAN_LIBRARY, a path to libsimdgan.so.2;
  2. where `cmake --install` put it, relative to this folder (_install.py,
     written by the install; a pip-installed module has none);
  3. the system's: ctypes.util.find_library("simdgan"), then the dynamic
     linker's search for libsimdgan.so.2 (LD_LIBRARY_PATH, ld.so.cache).
"""
import ctypes
import ctypes.util
import os

API_VERSION = 2
SONAME = "libsimdgan.so.%d" % API_VERSION

# simdgan_status
OK, BAD_INPUT, DIVERGED, STOPPED, TERMINATED = 0, 2, 3, 130, 143

# SIMDGAN_SET_*: fields the caller gave, which must agree with a state on resume.
SET_BITS = {"epochs": 1 << 0, "batch_size": 1 << 1, "lr": 1 << 2, "latent": 1 << 3,
            "hidden": 1 << 4, "seed": 1 << 5, "dataset": 1 << 6, "isa": 1 << 7,
            "precision": 1 << 8}


class Config(ctypes.Structure):
    """simdgan_config, field for field."""
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("epochs", ctypes.c_int),
        ("batch_size", ctypes.c_int),
        ("lr", ctypes.c_double),
        ("latent", ctypes.c_int),
        ("hidden", ctypes.c_int),
        ("seed", ctypes.c_uint64),
        ("threads", ctypes.c_int),
        ("data", ctypes.c_char_p),
        ("dataset", ctypes.c_char_p),
        ("out", ctypes.c_char_p),
        ("log_every", ctypes.c_int),
        ("isa", ctypes.c_char_p),
        ("precision", ctypes.c_char_p),
        ("checkpoint_every", ctypes.c_long),
        ("resume", ctypes.c_int),
        ("max_steps", ctypes.c_long),
        ("eval_every", ctypes.c_int),
        ("eval_n", ctypes.c_long),
        ("fixed_z", ctypes.c_int),
        ("bind", ctypes.c_char_p),
        ("quiet", ctypes.c_int),
        ("handle_signals", ctypes.c_int),
        ("fields_set", ctypes.c_uint),
    ]


class LogLine(ctypes.Structure):
    """simdgan_log: one log line's figures."""
    _fields_ = [
        ("epoch", ctypes.c_int), ("epochs", ctypes.c_int),
        ("step", ctypes.c_long), ("steps", ctypes.c_long),
        ("d_loss", ctypes.c_double), ("g_loss", ctypes.c_double),
        ("d_x", ctypes.c_double), ("d_g_z", ctypes.c_double),
        ("ms_per_step", ctypes.c_double),
    ]


LOG_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(LogLine))

_SIGNATURES = {
    "simdgan_version": (ctypes.c_char_p, []),
    "simdgan_api_version": (ctypes.c_int, []),
    "simdgan_last_error": (ctypes.c_char_p, []),
    "simdgan_isa": (ctypes.c_char_p, []),
    "simdgan_config_init": (None, [ctypes.POINTER(Config)]),
    "simdgan_trainer_open": (ctypes.c_int, [ctypes.POINTER(Config), ctypes.POINTER(ctypes.c_void_p)]),
    "simdgan_trainer_fit": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int, LOG_FN, ctypes.c_void_p]),
    "simdgan_trainer_steps": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_long, LOG_FN, ctypes.c_void_p]),
    "simdgan_trainer_save": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p]),
    "simdgan_trainer_sample": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint64,
                                              ctypes.c_void_p]),
    "simdgan_trainer_step": (ctypes.c_long, [ctypes.c_void_p]),
    "simdgan_trainer_steps_per_epoch": (ctypes.c_long, [ctypes.c_void_p]),
    "simdgan_trainer_close": (None, [ctypes.c_void_p]),
    "simdgan_generator_load": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]),
    "simdgan_generator_latent": (ctypes.c_int, [ctypes.c_void_p]),
    "simdgan_generator_sample": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint64,
                                                ctypes.c_void_p]),
    "simdgan_generator_close": (None, [ctypes.c_void_p]),
}

_here = os.path.dirname(os.path.abspath(__file__))
_lib = None


def _installed(name):
    """A path from _install.py, made absolute; None without that file."""
    try:
        from . import _install
    except ImportError:
        return None
    rel = getattr(_install, name)
    return os.path.normpath(os.path.join(_here, rel))


def _candidates():
    env = os.environ.get("SIMDGAN_LIBRARY")
    if env:
        return [("$SIMDGAN_LIBRARY", env)]
    out = []
    path = _installed("LIBRARY")
    if path:
        out.append(("the install beside this module", path))
    found = ctypes.util.find_library("simdgan")
    if found:
        out.append(("ctypes.util.find_library", found))
    out.append(("the dynamic linker's search", SONAME))
    return out


def library():
    """The loaded library, loading it on first use. Raises OSError naming
    every place tried."""
    global _lib
    if _lib is not None:
        return _lib
    tried = []
    for where, path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s (%s): %s" % (path, where, e))
            continue
        break
    else:
        raise OSError("simdgan: libsimdgan not found; tried " + "; ".join(tried) +
                      "; expected an installed simdgan or SIMDGAN_LIBRARY=/path/to/" + SONAME)
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    version = lib.simdgan_api_version()
    if version != API_VERSION:
        raise OSError("simdgan: %s has API version %d; expected %d" % (path, version, API_VERSION))
    c = Config()
    lib.simdgan_config_init(ctypes.byref(c))
    if c.size != ctypes.sizeof(Config):
        raise OSError("simdgan: %s: simdgan_config is %d bytes; this module's is %d"
                      % (path, c.size, ctypes.sizeof(Config)))
    # The binary finds the shipped classifiers from its own folder; a Python
    # process's binary is python3, so point the library at this install's.
    models = _installed("MODELS")
    if models and os.path.isdir(models) and not os.environ.get("SIMDGAN_MODELS"):
        os.environ["SIMDGAN_MODELS"] = models
    _lib = lib
    return lib


def last_error():
    return library().simdgan_last_error().decode("utf-8", "replace")
