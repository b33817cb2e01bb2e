"""simdgan: the PyTorch MNIST GAN tutorial trained on the CPU by libsimdgan,
from Python (ctypes over the installed shared library; numpy arrays).

    import simdgan
    t = simdgan.Trainer(data="mnist", out="run1", epochs=1)   # simdgan train's flags
    t.fit(1, on_log=lambda line: print(line.epoch, line.step, line.d_loss))
    images = t.sample(16, seed=0)          # float32 [16, 28, 28] in [-1, 1]
    t.save("run1")                         # run1/G.safetensors, run1/D.safetensors
    t.close()

    weights = simdgan.load("run1/G.safetensors")        # {"0.weight": ndarray, ...}
    G.load_state_dict(simdgan.to_torch("run1/G.safetensors"))   # with PyTorch

Errors from the library raise simdgan.Error, whose status is the command's
exit status (2 bad input, 3 diverged) and whose message is its one line.
"""
import ctypes
import os

import numpy as np

from . import _native, _safetensors

__all__ = ["Trainer", "Generator", "Error", "LogLine", "load", "metadata", "to_torch",
           "version", "isa", "defaults", "OK", "BAD_INPUT", "DIVERGED", "STOPPED", "TERMINATED"]

OK, BAD_INPUT, DIVERGED = _native.OK, _native.BAD_INPUT, _native.DIVERGED
STOPPED, TERMINATED = _native.STOPPED, _native.TERMINATED
SIDE = 28  # images are SIDE x SIDE


class Error(Exception):
    """A failed call: status is simdgan's exit status, str() its one line."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _check(status):
    if status != OK:
        raise Error(status, _native.last_error())


def version():
    """The library's version, e.g. "0.1.0"."""
    return _native.library().simdgan_version().decode()


def isa():
    """The kernel table this CPU gets: "avx512", "avx2", "neon" or "ref"."""
    s = _native.library().simdgan_isa()
    if s is None:
        raise Error(BAD_INPUT, _native.last_error())
    return s.decode()


_STRINGS = ("data", "dataset", "out", "isa", "precision", "bind")
_FLAGS = tuple(name for name, _ in _native.Config._fields_ if name not in ("size", "fields_set"))


def defaults():
    """simdgan train's defaults, as Trainer's keyword arguments (None: unset)."""
    c = _native.Config()
    _native.library().simdgan_config_init(ctypes.byref(c))
    out = {}
    for name in _FLAGS:
        v = getattr(c, name)
        out[name] = v.decode() if isinstance(v, bytes) else v
    return out


class LogLine:
    """One log line: epoch (from 0) of epochs, step (1..steps) within the
    epoch, d_loss, g_loss, d_x (D(x)), d_g_z (D(G(z))), ms_per_step."""
    __slots__ = [name for name, _ in _native.LogLine._fields_]

    def __init__(self, c):
        for name in self.__slots__:
            setattr(self, name, getattr(c, name))

    def __repr__(self):
        return "LogLine(%s)" % ", ".join("%s=%r" % (n, getattr(self, n)) for n in self.__slots__)


class _Handle:
    """A library object: closed by close(), by leaving a `with` block, or when
    collected. Subclasses set _lib, _handle and _close (the C function)."""

    _handle = None

    def _live(self):
        if not self._handle:
            raise ValueError("simdgan.%s: closed" % type(self).__name__)
        return self._handle

    def close(self):
        """Releases the object (a trainer: and its lock on out); unusable after."""
        if self._handle:
            getattr(self._lib, self._close)(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_handle", None):
            self.close()


class Trainer(_Handle):
    """A training run: simdgan train's run, in steps, epochs and samples.

    Keyword arguments are simdgan train's flags with underscores (epochs,
    batch_size, lr, latent, hidden, seed, threads, data, dataset, out,
    log_every, isa, precision, checkpoint_every, resume, max_steps, eval_every, eval_n,
    fixed_z, bind, quiet, handle_signals); defaults() lists their defaults.
    The flags given count as given for resume=True: they must agree with the
    state. Opening loads the data, checks and locks `out`, and builds G and D
    (or reads the state). Close it (or use `with`) to release the lock."""

    def __init__(self, **flags):
        unknown = sorted(set(flags) - set(_FLAGS))
        if unknown:
            raise TypeError("simdgan.Trainer: unknown flag%s %s; expected some of %s"
                            % ("s" if len(unknown) > 1 else "", ", ".join(unknown), ", ".join(_FLAGS)))
        lib = _native.library()
        self._lib, self._handle, self._close = lib, None, "simdgan_trainer_close"
        c = _native.Config()
        lib.simdgan_config_init(ctypes.byref(c))
        self._keep = []  # the strings the config borrows live as long as the trainer
        for name, value in flags.items():
            if name in _STRINGS and value is not None:
                value = os.fsencode(value)
                self._keep.append(value)
            elif isinstance(value, bool):
                value = int(value)
            setattr(c, name, value)
            c.fields_set |= _native.SET_BITS.get(name, 0)
        self._out = os.fsdecode(c.out) if c.out else "."
        handle = ctypes.c_void_p()
        _check(lib.simdgan_trainer_open(ctypes.byref(c), ctypes.byref(handle)))
        self._handle = handle
        self._config = c

    def _run(self, fn, count, on_log):
        """fn(handle, count, callback, NULL) with on_log behind the callback. An
        exception in on_log (KeyboardInterrupt too) stops the run cleanly, its
        state written, and is raised here."""
        raised = []

        def line(_user, p):
            try:
                return 1 if on_log(LogLine(p.contents)) else 0
            except BaseException as e:  # noqa: B902 - re-raised after the run stops
                raised.append(e)
                return 1

        cb = _native.LOG_FN(line) if on_log else _native.LOG_FN()
        status = fn(self._live(), count, cb, None)
        if raised:
            raise raised[0]
        if status in (OK, STOPPED, TERMINATED):
            return status
        raise Error(status, _native.last_error())

    def fit(self, epochs=1, on_log=None):
        """Trains `epochs` more epochs (to the end of the epoch `epochs` after
        the current one's start), writing grids, metrics and states as
        simdgan train does. on_log(LogLine) runs at each log line; a true
        return stops the run cleanly. Returns OK, or STOPPED when on_log
        stopped it (TERMINATED for SIGTERM with handle_signals=True); raises
        Error for bad input or divergence."""
        return self._run(self._lib.simdgan_trainer_fit, int(epochs), on_log)

    def steps(self, steps, on_log=None):
        """Trains `steps` more steps; as fit."""
        return self._run(self._lib.simdgan_trainer_steps, int(steps), on_log)

    def sample(self, n=64, seed=0):
        """n images of G for seed's z: float32 [n, 28, 28] in [-1, 1], the
        images `simdgan sample --seed seed` draws."""
        return _sample(self._lib.simdgan_trainer_sample, self._live(), n, seed)

    def save(self, folder=None):
        """Writes folder/G.safetensors and folder/D.safetensors (default: out)."""
        folder = self._out if folder is None else folder
        _check(self._lib.simdgan_trainer_save(self._live(), os.fsencode(folder)))

    @property
    def step(self):
        """Steps trained so far."""
        return self._lib.simdgan_trainer_step(self._live())

    @property
    def steps_per_epoch(self):
        return self._lib.simdgan_trainer_steps_per_epoch(self._live())



class Generator(_Handle):
    """A G read from a G.safetensors (simdgan's, or the tutorial's saved from
    PyTorch): sample(n, seed) as Trainer.sample."""

    def __init__(self, path):
        lib = _native.library()
        self._lib, self._handle, self._close = lib, None, "simdgan_generator_close"
        handle = ctypes.c_void_p()
        _check(lib.simdgan_generator_load(os.fsencode(path), ctypes.byref(handle)))
        self._handle = handle

    @property
    def latent(self):
        return self._lib.simdgan_generator_latent(self._live())

    def sample(self, n=64, seed=0):
        return _sample(self._lib.simdgan_generator_sample, self._live(), n, seed)



def _sample(fn, handle, n, seed):
    n, seed = int(n), int(seed)
    if n < 1:
        raise ValueError("simdgan: n %d: expected at least 1 image" % n)
    if not 0 <= seed < 1 << 64:
        raise ValueError("simdgan: seed %d: expected an integer from 0 to 2^64-1" % seed)
    images = np.empty((n, SIDE, SIDE), dtype=np.float32)
    _check(fn(handle, n, seed, images.ctypes.data))
    return images


def load(path):
    """The tensors of a safetensors file (G.safetensors, D.safetensors,
    checkpoint.safetensors, or any other) as {name: numpy array}, without the
    safetensors package. Raises ValueError naming the file when it is not
    well-formed."""
    return _safetensors.read(path)[0]


def metadata(path):
    """A safetensors file's __metadata__ (simdgan's: step, dataset, ...)."""
    return _safetensors.read(path)[1]


def to_torch(path):
    """load(path) as a PyTorch state_dict ({name: torch.Tensor}), e.g. for the
    tutorial's nn.Sequential: G.load_state_dict(simdgan.to_torch("G.safetensors"))."""
    try:
        import torch
    except ImportError as e:
        raise ImportError("simdgan.to_torch needs PyTorch (python3-torch); "
                          "simdgan.load gives numpy arrays without it") from e
    return {k: torch.from_numpy(v) for k, v in load(path).items()}
