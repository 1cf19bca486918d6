"""twinc — C kernels with derivatives, and NumPy code around them, in one graph.

Kernels (functions marked ``#pragma aad`` in C, built with their twins)::

    lib = twinc.load("libpricing.so")
    price = lib.bs_call(S, K, 0.03, 0.0, sigma, T)          # NumPy broadcasting
    price, greeks = lib.bs_call.value_and_grad(S, K, 0.03, 0.0, sigma, T)

NumPy code around kernels, recorded once and replayed natively::

    @twinc.function
    def asian(S0, sigma, Z):
        ...NumPy and kernel calls...

    value = asian(S0, sigma, Z)
    value, (dS0, dsigma) = twinc.value_and_grad(asian, argnums=(0, 1))(S0, sigma, Z)

See README and ``twinc.SUPPORTED`` for what can be recorded.
"""

from ._twinc import (ABI_VERSION, Graph, InputMutatedError, Kernel, Library, LoadError,
                     TwincError, config, load)
from ._trace import (SUPPORTED, Tracer, TracerConversionError, TwincWarning, UnsupportedError,
                     ncdf, npdf)
from ._function import Function, function, grad, record, value_and_grad

__all__ = ["load", "config", "Library", "Kernel", "Graph", "function", "Function", "value_and_grad", "grad",
           "record", "ncdf", "npdf", "Tracer", "SUPPORTED", "TwincError", "LoadError",
           "InputMutatedError", "TracerConversionError", "UnsupportedError", "TwincWarning",
           "ABI_VERSION"]
__version__ = "0.1.0"
