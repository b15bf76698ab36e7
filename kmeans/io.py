"""Saving and loading fitted models as JSON: portable, human-readable, never pickle."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kmeans import registry
from kmeans._types import Float64Array, IterationRecord
from kmeans.errors import ModelFormatError, UnknownStrategyError, ValidationError

FORMAT = "kmeans-model"
VERSION = 1
#: The version of files that carry a ``BisectingKMeans`` split tree (field ``bisecting``):
#: readers of version 1 alone refuse them instead of predicting by the nearest center.
TREE_VERSION = 2


def _file_mode(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


class _Terminated(BaseException):
    """SIGTERM arrived during :func:`write_atomic` (raised by its temporary handler)."""


@contextlib.contextmanager
def _sigterm_cleans() -> Iterator[list[str]]:
    """While writing: a SIGTERM removes the temporary files listed, then ends the process as SIGTERM would.

    Only when SIGTERM has its default action (which would kill the process and leave the
    hidden file behind) and on the main thread (the only one that may set handlers); a
    program with its own handler (the ``kmeans`` CLI raises) keeps it.
    """
    made: list[str] = []
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield made
        return

    def handler(signum: int, frame: Any) -> None:
        raise _Terminated

    signal.signal(signal.SIGTERM, handler)
    try:
        yield made
    except _Terminated:
        for tmp in made:
            Path(tmp).unlink(missing_ok=True)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)  # die of the signal, with its exit status
        raise  # pragma: no cover - not reached: the default action ends the process
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename,
    so a crash never leaves a half-written file, nor a SIGTERM the temporary file."""
    target = Path(path)
    with _sigterm_cleans() as made:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
        made.append(tmp)
        _write_replace(fd, tmp, target, data)


def _write_replace(fd: int, tmp: str, target: Path, data: bytes) -> None:
    try:
        # mkstemp creates the file 0600; give it the mode a plain open() would have
        # (the replaced file's mode, or 0666 minus the umask).
        os.chmod(tmp, _file_mode(target))
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _algorithm_to_dict(model: Any) -> str | dict[str, Any]:
    """``"lloyd"``, or the mini-batch parameters as an object."""
    from kmeans.estimator import resolve_algorithm

    algorithm = resolve_algorithm(model.algorithm, model.batch_size)
    if algorithm is None:
        return "lloyd"
    return {name: getattr(algorithm, name) for name in _MINIBATCH_FIELDS} | {"name": "minibatch"}


def model_to_dict(model: Any) -> dict[str, Any]:
    model._check_fitted()
    distance = model.distance_.name
    if distance not in registry.distances:
        raise ModelFormatError(
            f"distance {distance!r} is not registered by name, so a loaded model could not find it; "
            "register it with kmeans.register_distance first"
        )
    return (
        {
            "format": FORMAT,
            "version": VERSION,
            "n_clusters": int(model.cluster_centers_.shape[0]),
            "n_features": int(model.n_features_in_),
            "distance": distance,
            "backend": getattr(model.backend_, "name", "numpy"),
            "params": {
                "max_iter": int(model.max_iter),  # NumPy integers are valid parameters but not JSON
                "tol": float(model.tol),
                "init": model.init if isinstance(model.init, str) else getattr(model.init, "name", "custom"),
                "algorithm": _algorithm_to_dict(model),
            },
            "seed": int(model.seed_),
            "cluster_centers": model.cluster_centers_.tolist(),
            "inertia": float(model.inertia_),
            "n_iter": int(model.n_iter_),
            "converged": bool(model.converged_),
            "cluster_sizes": model.cluster_sizes_.tolist(),
            "history": [
                {
                    "iteration": h.iteration,
                    "inertia": h.inertia,
                    "center_shift": h.center_shift,
                    "elapsed": h.elapsed,
                    "n_empty": h.n_empty,
                    "restart": h.restart,
                }
                for h in model.history_
            ],
        }
        | _state_to_dict(model)
        | _tree_to_dict(model)
    )


def _state_to_dict(model: Any) -> dict[str, Any]:
    """The mini-batch state (``partial_fit`` resumes from it), when the model has one."""
    state = model.__dict__.get("minibatch_state_")
    if state is None:
        return {}
    return {
        "minibatch": {
            "counts": np.asarray(state.counts, dtype=np.float64).tolist(),
            "n_steps": int(state.n_steps),
            "since_reassign": int(state.since_reassign),
            "seed": int(state.seed),
        }
    }


def _cost_out(value: float) -> float | str:
    """A cost for JSON: ``"inf"`` when it honestly exceeded float64 (JSON has no infinity)."""
    return "inf" if value == math.inf else value


def save_model(model: Any, path: str | os.PathLike[str]) -> None:
    """Write a fitted ``KMeans`` to ``path`` as JSON, atomically."""
    data = model_to_dict(model)
    # NaN: not known, as for a model converted from centers alone (kmeans.interop): JSON null
    data["inertia"] = None if math.isnan(data["inertia"]) else _cost_out(data["inertia"])
    for h in data["history"]:
        h["inertia"] = _cost_out(h["inertia"])
    text = json.dumps(data, indent=1, allow_nan=False)
    write_atomic(path, text.encode("utf-8"))


#: The largest model file read (bytes): 64 MiB holds about 3 million centers values;
#: anything longer (``/dev/zero``, a mistaken data file) is refused without reading it all.
MAX_MODEL_BYTES = 64 << 20

#: Seeds are 64-bit integers (signed or unsigned).
_SEED_RANGE = (-(1 << 63), 1 << 64)


class _BadFieldError(Exception):
    """A field that fails its check; ``load_model`` turns it into a ModelFormatError."""


def _require(cond: bool, path: Any, what: str) -> None:
    if not cond:
        raise ModelFormatError(f"{path}: not a valid kmeans model file: {what}")


def _read_capped(path: str | os.PathLike[str], limit: int) -> bytes:
    with open(path, "rb") as fh:
        raw = fh.read(limit + 1)
    if len(raw) > limit:
        raise _BadFieldError(
            f"longer than {limit} bytes (the largest model file this library reads; see MAX_MODEL_BYTES)"
        )
    return raw


def _field(data: dict[str, Any], name: str) -> Any:
    if name not in data:
        raise _BadFieldError(f"missing field {name!r}")
    return data[name]


def _int(value: Any, name: str, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value >= hi):
        bound = f">= {lo}" if hi is None else f"in [{lo}, {hi})"
        raise _BadFieldError(f"{name} must be an integer {bound}, got {_short(value)}")
    return value


def _number(value: Any, name: str, *, allow_inf: bool = False) -> float:
    """A JSON number >= 0 as a float (``"inf"`` too, with ``allow_inf``)."""
    if allow_inf and value == "inf":
        return math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _BadFieldError(f"{name} must be a number, got {_short(value)}")
    try:
        out = float(value)
    except OverflowError:
        raise _BadFieldError(f"{name} is too large for float64") from None
    if not (math.isfinite(out) and out >= 0):
        raise _BadFieldError(f"{name} must be a finite number >= 0, got {_short(value)}")
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text)} characters)"


def _matrix(value: Any, name: str, shape: tuple[int, ...]) -> Float64Array:
    """A list (of lists) of JSON numbers with exactly ``shape``, as float64."""

    def numbers(v: Any, depth: int) -> bool:
        if depth == len(shape):
            return not isinstance(v, bool) and isinstance(v, (int, float))
        return isinstance(v, list) and len(v) == shape[depth] and all(numbers(x, depth + 1) for x in v)

    if not numbers(value, 0):
        got = _shape(value) if isinstance(value, list) and _flat_ok(value) else None
        detail = f"has shape {got}" if got not in (None, shape) else "is not a list of numbers of that shape"
        raise _BadFieldError(f"{name} {detail}, expected {shape}")
    try:
        return np.asarray(value, dtype=np.float64)
    except OverflowError:
        raise _BadFieldError(f"{name} holds a number too large for float64") from None


def _shape(value: list[Any]) -> tuple[int, ...] | None:
    try:
        return tuple(np.shape(value))
    except ValueError:  # ragged rows
        return None


def _flat_ok(value: list[Any]) -> bool:
    """Whether ``np.shape`` may look at ``value`` (shallow lists of numbers only: no deep recursion)."""
    return all(not isinstance(r, list) or all(not isinstance(x, (list, dict, str)) for x in r) for r in value) and all(
        not isinstance(r, (dict, str)) for r in value
    )


_RECORD_FIELDS = {"iteration": 1, "n_empty": 0, "restart": 0}

#: The saved parameters of :class:`kmeans.minibatch.MiniBatch`.
_MINIBATCH_FIELDS = ("batch_size", "max_no_improvement", "reassignment_ratio", "init_size", "gather_rows")


def _algorithm(value: Any) -> Any:
    """``params.algorithm``: ``"lloyd"`` or a mini-batch object, as a :class:`~kmeans.minibatch.MiniBatch`."""
    from kmeans.minibatch import MiniBatch

    if value == "lloyd":
        return "lloyd"
    if not isinstance(value, dict) or value.get("name") != "minibatch" or set(value) != {"name", *_MINIBATCH_FIELDS}:
        raise _BadFieldError(
            f"params.algorithm must be 'lloyd' or an object with name='minibatch' and {', '.join(_MINIBATCH_FIELDS)}"
        )
    optional_ints = {
        name: None if value[name] is None else _int(value[name], f"params.algorithm.{name}", 1)
        for name in ("max_no_improvement", "init_size")
    }
    algorithm = MiniBatch(
        batch_size=_int(value["batch_size"], "params.algorithm.batch_size", 1),
        gather_rows=_int(value["gather_rows"], "params.algorithm.gather_rows", 1),
        reassignment_ratio=_number(value["reassignment_ratio"], "params.algorithm.reassignment_ratio"),
        max_no_improvement=optional_ints["max_no_improvement"],
        init_size=optional_ints["init_size"],
    )
    try:
        algorithm.check()
    except ValidationError as exc:
        raise _BadFieldError(f"params.algorithm: {exc}") from None
    return algorithm


def _state(value: Any, k: int) -> Any:
    """The ``minibatch`` field as a :class:`~kmeans.minibatch.MiniBatchState`."""
    from kmeans.minibatch import MiniBatchState

    if not isinstance(value, dict) or set(value) != {"counts", "n_steps", "since_reassign", "seed"}:
        raise _BadFieldError("minibatch must be an object with counts, n_steps, since_reassign, seed")
    counts = _matrix(value["counts"], "minibatch.counts", (k,))
    if not (np.isfinite(counts).all() and (counts >= 0).all()):
        raise _BadFieldError("minibatch.counts must be k finite numbers >= 0")
    return MiniBatchState(
        counts,
        n_steps=_int(value["n_steps"], "minibatch.n_steps", 0),
        since_reassign=_int(value["since_reassign"], "minibatch.since_reassign", 0),
        seed=_int(value["seed"], "minibatch.seed", *_SEED_RANGE),
    )


def _history(value: Any) -> list[IterationRecord]:
    if not isinstance(value, list):
        raise _BadFieldError(f"history must be a list, got {_short(value)}")
    out = []
    for i, h in enumerate(value):
        if not isinstance(h, dict) or set(h) != {
            "iteration",
            "inertia",
            "center_shift",
            "elapsed",
            "n_empty",
            "restart",
        }:
            raise _BadFieldError(
                f"history[{i}] must be an object with iteration, inertia, center_shift, elapsed, n_empty, restart"
            )
        ints = {k: _int(h[k], f"history[{i}].{k}", lo) for k, lo in _RECORD_FIELDS.items()}
        out.append(
            IterationRecord(
                inertia=_number(h["inertia"], f"history[{i}].inertia", allow_inf=True),
                center_shift=_number(h["center_shift"], f"history[{i}].center_shift"),
                elapsed=_number(h["elapsed"], f"history[{i}].elapsed"),
                **ints,
            )
        )
    return out


def _params(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _BadFieldError(f"params must be an object, got {_short(value)}")
    out: dict[str, Any] = {}
    if "max_iter" in value:
        out["max_iter"] = _int(value["max_iter"], "params.max_iter", 0)
    if "tol" in value:
        out["tol"] = _number(value["tol"], "params.tol")
    if "init" in value and not isinstance(value["init"], str):
        raise _BadFieldError(f"params.init must be a string, got {_short(value['init'])}")
    if "algorithm" in value:
        out["algorithm"] = _algorithm(value["algorithm"])
    return out


def _parse(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _BadFieldError("not UTF-8 text") from None
    try:
        return json.loads(text)  # NaN, Infinity and 1e400 parse as floats; the field checks refuse them
    except RecursionError:
        raise _BadFieldError("invalid JSON (nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of more digits than Python converts
        raise _BadFieldError(f"invalid JSON ({_short(str(exc))})") from None


def load_model(path: str | os.PathLike[str], *, max_bytes: int = MAX_MODEL_BYTES) -> Any:
    """Read a model written by :meth:`KMeans.save`; checks every field's type and range.

    Any malformed file raises :class:`~kmeans.errors.ModelFormatError`; at most
    ``max_bytes`` are read. A missing file raises the usual ``OSError``.
    """
    from kmeans.estimator import KMeans

    try:
        data = _parse(_read_capped(path, max_bytes))
        _require(isinstance(data, dict) and data.get("format") == FORMAT, path, f"missing format marker {FORMAT!r}")
        version = data.get("version")
        _require(
            type(version) is int and version in (VERSION, TREE_VERSION),
            path,
            f"unsupported version {_short(version)} (this library reads {VERSION} and {TREE_VERSION})",
        )
        k = _int(_field(data, "n_clusters"), "n_clusters", 1)
        d = _int(_field(data, "n_features"), "n_features", 1)
        name = _field(data, "distance")
        if not isinstance(name, str):
            raise _BadFieldError(f"distance must be a string, got {_short(name)}")
        try:
            distance = registry.distances[name]
        except UnknownStrategyError as exc:
            raise _BadFieldError(str(exc)) from None
        if "backend" in data and not isinstance(data["backend"], str):
            raise _BadFieldError(f"backend must be a string, got {_short(data['backend'])}")
        centers = _matrix(_field(data, "cluster_centers"), "cluster_centers", (k, d))
        if not np.isfinite(centers).all():
            raise _BadFieldError("cluster_centers contains NaN or infinite values")
        sizes = _matrix(_field(data, "cluster_sizes"), "cluster_sizes", (k,))
        if not (np.isfinite(sizes).all() and (sizes >= 0).all()):
            raise _BadFieldError("cluster_sizes must be k non-negative numbers")
        raw_inertia = _field(data, "inertia")  # null: not known (a converted model), read as NaN
        inertia = math.nan if raw_inertia is None else _number(raw_inertia, "inertia", allow_inf=True)
        seed = _int(_field(data, "seed"), "seed", *_SEED_RANGE)
        n_iter = _int(_field(data, "n_iter"), "n_iter", 0)
        converged = data.get("converged", False)
        if not isinstance(converged, bool):
            raise _BadFieldError(f"converged must be true or false, got {_short(converged)}")
        history = _history(data.get("history", []))
        params = _params(data.get("params", {}))
        state = _state(data["minibatch"], k) if "minibatch" in data else None
        if ("bisecting" in data) != (version == TREE_VERSION):
            raise _BadFieldError(f"a file of version {TREE_VERSION} (and only one) has the field 'bisecting'")
        bisecting = _bisecting(data["bisecting"], centers) if "bisecting" in data else None
    except _BadFieldError as exc:
        raise ModelFormatError(f"{path}: not a valid kmeans model file: {exc}") from None
    if bisecting is not None:
        model = _bisecting_model(bisecting, distance, k=k, seed=seed, distance=name, **params)
    else:
        model = KMeans(n_clusters=k, seed=seed, distance=name, **params)
    model.cluster_centers_ = centers
    model.inertia_ = inertia
    model.n_iter_ = n_iter
    model.cluster_sizes_ = sizes
    model.history_ = history
    model.converged_ = converged
    model.seed_ = seed
    model.labels_ = None
    model.n_features_in_ = d
    model.backend_ = registry.backends["numpy"]
    model.distance_ = distance
    model._set_state(state)
    return model


# -- the split tree of a BisectingKMeans (files of version TREE_VERSION) --------------------

_TREE_ARRAYS = ("centers", "children", "weight", "cost")


def _tree_to_dict(model: Any) -> dict[str, Any]:
    """``version`` and ``bisecting`` (parameters and split tree) for a ``BisectingKMeans``; else nothing."""
    tree = model.__dict__.get("tree_")
    if tree is None:
        return {}
    return {
        "version": TREE_VERSION,
        "bisecting": {
            "bisecting_strategy": model.bisecting_strategy,
            "min_divisible_cluster_size": float(model.min_divisible_cluster_size),
            "tree": {
                "centers": tree.centers.tolist(),
                "children": tree.children.tolist(),
                "weight": tree.weight.tolist(),
                "cost": [_cost_out(float(c)) for c in tree.cost],
            },
        },
    }


def _bisecting(value: Any, leaf_centers: Float64Array) -> tuple[str, float, Any]:
    """The ``bisecting`` field: ``(strategy, min size, SplitTree)``, the tree checked against the model.

    The tree must be one that :class:`~kmeans.BisectingKMeans` builds: split ``s`` made nodes
    ``2s + 1`` and ``2s + 2``, one leaf per cluster, the leaves' centers (depth-first) equal to
    ``cluster_centers``.
    """
    from kmeans.bisecting import STRATEGIES, SplitTree, tree_labels

    if not isinstance(value, dict) or set(value) != {"bisecting_strategy", "min_divisible_cluster_size", "tree"}:
        raise _BadFieldError("bisecting must be an object with bisecting_strategy, min_divisible_cluster_size, tree")
    strategy = value["bisecting_strategy"]
    if strategy not in STRATEGIES:
        raise _BadFieldError(
            f"bisecting.bisecting_strategy must be one of {', '.join(STRATEGIES)}, got {_short(strategy)}"
        )
    min_size = _number(value["min_divisible_cluster_size"], "bisecting.min_divisible_cluster_size")
    if min_size <= 0:
        raise _BadFieldError("bisecting.min_divisible_cluster_size must be > 0")
    tree = value["tree"]
    if not isinstance(tree, dict) or set(tree) != set(_TREE_ARRAYS):
        raise _BadFieldError(f"bisecting.tree must be an object with {', '.join(_TREE_ARRAYS)}")
    k, d = leaf_centers.shape
    n = 2 * k - 1
    centers = _matrix(tree["centers"], "bisecting.tree.centers", (n, d))
    children = _matrix(tree["children"], "bisecting.tree.children", (n, 2))
    weight = _matrix(tree["weight"], "bisecting.tree.weight", (n,))
    cost_list = tree["cost"]
    if not isinstance(cost_list, list):
        raise _BadFieldError("bisecting.tree.cost must be a list")
    cost = _matrix([math.inf if c == "inf" else c for c in cost_list], "bisecting.tree.cost", (n,))
    if not (np.isfinite(centers).all() and np.isfinite(weight).all() and (weight >= 0).all() and (cost >= 0).all()):
        raise _BadFieldError("bisecting.tree: centers and weights must be finite, weights and costs >= 0")
    if not np.array_equal(children, np.round(children)) or (children < -1).any():
        raise _BadFieldError("bisecting.tree.children must be node ids or -1")
    kids = children.astype(np.intp)
    split = np.flatnonzero(kids[:, 0] >= 0)
    leaf = ~np.isin(np.arange(n), split)
    left = kids[split, 0]
    if (
        (kids[leaf] != -1).any()
        or (kids[split, 1] != left + 1).any()
        or not np.array_equal(np.sort(left), 2 * np.arange(k - 1) + 1)
        or (split >= left).any()
    ):
        raise _BadFieldError("bisecting.tree.children is not a split tree (split s makes nodes 2s+1 and 2s+2)")
    parent = np.full(n, -1, dtype=np.intp)
    parent[kids[split].ravel()] = np.repeat(split, 2)
    label = tree_labels(kids)
    if not np.array_equal(centers[label >= 0][np.argsort(label[label >= 0])], leaf_centers):
        raise _BadFieldError("bisecting.tree: the leaf centers differ from cluster_centers")
    return strategy, min_size, SplitTree(centers, kids, parent, weight, cost, label)


def _bisecting_model(bisecting: tuple[str, float, Any], metric: Any, *, k: int, **params: Any) -> Any:
    """A :class:`BisectingKMeans` predicting by descent in the loaded tree; ``metric`` is the model's ``Distance``."""
    from kmeans.bisecting import BisectingKMeans, TreeAssign

    strategy, min_size, tree = bisecting
    model = BisectingKMeans(k, bisecting_strategy=strategy, min_divisible_cluster_size=min_size, **params)
    model.tree_ = tree
    model._tree_assign = TreeAssign(tree, metric.assign, distance=metric)
    return model
