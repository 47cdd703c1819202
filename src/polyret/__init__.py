"""polyret: train and evaluate multilingual dense retrievers.

Every stage is a library call first (``polyret.data``, ``polyret.encode``, ``polyret.mining``,
``polyret.train``, ``polyret.eval``, ``polyret.study``, ``polyret.report``); ``polyret.cli`` is the
only module that knows about the command line.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("polyret")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"
