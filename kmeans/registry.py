"""Name -> strategy registries.

A registry entry is either an object or a lazy ``"module:attribute"`` import path, so
that heavy optional engines (pyspark) are imported only when first used. Downstream
code adds its own strategies with :func:`register_backend`, :func:`register_initializer`
and :func:`register_distance`, or passes strategy objects directly to ``KMeans``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from kmeans.errors import MissingDependencyError, UnknownStrategyError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """A read-only mapping of names to strategies, with a ``register`` method.

    Lazy entries are ``"module:attribute"`` strings; the attribute may be a class (then it
    is called with no arguments) or an instance. ``install_hint`` is shown when the
    import fails.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = {}
        self._hints: dict[str, str] = {}

    def register(self, name: str, impl: T | str, *, clobber: bool = False, install_hint: str = "") -> None:
        """Add ``impl`` (an object, or a lazy ``"module:attribute"`` path) under ``name``.

        Raises ``ValueError`` if ``name`` is taken, unless ``clobber=True``.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name must be a non-empty string, got {name!r}")
        if name in self._entries and not clobber:
            raise ValueError(f"{self.kind} {name!r} is already registered; pass clobber=True to replace it")
        self._entries[name] = impl
        self._hints.pop(name, None)  # a clobbered entry's hint must not outlive it
        if install_hint:
            self._hints[name] = install_hint

    def __getitem__(self, name: str) -> T:
        try:
            entry = self._entries[name]
        except KeyError:
            known = ", ".join(repr(n) for n in sorted(self._entries))
            raise UnknownStrategyError(f"unknown {self.kind} {name!r}; known {self.kind}s: {known}") from None
        if isinstance(entry, str):
            entry = self._load(name, entry)
            self._entries[name] = entry
        return entry  # type: ignore[no-any-return]

    def _load(self, name: str, path: str) -> Any:
        module_name, _, attr = path.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            hint = self._hints.get(name, "")
            raise MissingDependencyError(
                f"{self.kind} {name!r} needs a package that is not installed ({exc}). {hint}".strip()
            ) from exc
        obj = getattr(module, attr)
        return obj() if isinstance(obj, type) else obj

    def __contains__(self, name: object) -> bool:
        # Mapping's default looks the entry up and catches only KeyError: that would raise
        # UnknownStrategyError on a miss and import lazy entries just to test membership.
        return name in self._entries

    def get(self, name: str, default: Any = None) -> Any:
        """The strategy registered as ``name`` (imported if lazy), or ``default``."""
        return self[name] if name in self._entries else default

    def is_loaded(self, name: str) -> bool:
        """Whether ``name`` is registered and already imported (lazy entries load on first lookup)."""
        return name in self._entries and not isinstance(self._entries[name], str)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"


backends: Registry[Any] = Registry("backend")
initializers: Registry[Any] = Registry("initializer")
distances: Registry[Any] = Registry("distance")

_SPARK_HINT = "Install it with: pip install 'kmeans[spark]' (and a Java 17 or 21 runtime)."

backends.register("numpy", "kmeans.backends.numpy:NumPyBackend")
backends.register("spark-rdd", "kmeans.backends.spark_rdd:SparkRDDBackend", install_hint=_SPARK_HINT)
backends.register("spark-ml", "kmeans.backends.spark_ml:SparkMLBackend", install_hint=_SPARK_HINT)
initializers.register("random", "kmeans.init.random:Random")
initializers.register("k-means++", "kmeans.init.kmeans_plus_plus:KMeansPlusPlus")
initializers.register("k-means||", "kmeans.init.kmeans_parallel:KMeansParallel")
initializers.register("per-partition", "kmeans.init.per_partition:PerPartition")
initializers.register("take-sample", "kmeans.init.take_sample:TakeSample")
distances.register("l2", "kmeans.distance.l2:L2")
distances.register("l1", "kmeans.distance.l1:L1")
distances.register("cosine", "kmeans.distance.cosine:COSINE")


def register_backend(name: str, impl: Any, *, clobber: bool = False, install_hint: str = "") -> None:
    """Make ``KMeans(backend=name)`` use ``impl`` (an object, or a ``"module:attr"`` path).

    ``install_hint`` is shown if a lazy ``"module:attr"`` entry fails to import.
    """
    backends.register(name, impl, clobber=clobber, install_hint=install_hint)


def register_initializer(name: str, impl: Any, *, clobber: bool = False, install_hint: str = "") -> None:
    """Make ``KMeans(init=name)`` use ``impl``.

    ``install_hint`` is shown if a lazy ``"module:attr"`` entry fails to import.
    """
    initializers.register(name, impl, clobber=clobber, install_hint=install_hint)


def register_distance(name: str, impl: Any, *, clobber: bool = False, install_hint: str = "") -> None:
    """Make ``KMeans(distance=name)`` use ``impl`` (a :class:`kmeans.distance.Distance`).

    ``install_hint`` is shown if a lazy ``"module:attr"`` entry fails to import.
    """
    distances.register(name, impl, clobber=clobber, install_hint=install_hint)
