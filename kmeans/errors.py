"""Exceptions raised by :mod:`kmeans`.

Every error derives from a standard Python exception so that callers who catch
``ValueError`` or ``ImportError`` keep working, and from :class:`KMeansError` so
that callers can catch everything this library raises in one clause.
"""

from __future__ import annotations


class KMeansError(Exception):
    """Base class of every exception raised by this library."""


class ValidationError(KMeansError, ValueError):
    """Bad input data or parameters, detected before any expensive work."""


class UnknownStrategyError(KMeansError, ValueError):
    """A backend, initializer or distance name that no registry knows."""


class NotFittedError(KMeansError, AttributeError):
    """A fitted attribute or method was used before :meth:`KMeans.fit`."""


class MissingDependencyError(KMeansError, ImportError):
    """An optional dependency (pyspark, Pillow, ...) is not installed."""


class ModelFormatError(KMeansError, ValueError):
    """A saved model file is malformed or from an unknown format version."""


class ConvergenceWarning(UserWarning):
    """A fit that could not give what was asked and gave the best it could (scikit-learn's name).

    Raised when the data has fewer distinct points of positive weight than ``n_clusters``:
    the fit returns the exact optimum, those points as centers (see the user guide). Once
    scikit-learn is imported the warning is also its ``sklearn.exceptions.ConvergenceWarning``.
    """


class Terminated(SystemExit):
    """SIGTERM arrived: raised in the main thread by the command line's handler so that cleanup runs.

    Not an error, so not a :class:`KMeansError`: a ``SystemExit`` whose ``code`` is the exit
    status, 143 (128 + SIGTERM); ``except Exception`` clauses let it pass, and uncaught it
    ends the process with that status.
    """
