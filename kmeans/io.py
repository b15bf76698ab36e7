"""Saving and loading fitted models as JSON: portable, human-readable, never pickle."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from kmeans import registry
from kmeans._types import IterationRecord
from kmeans.errors import ModelFormatError

FORMAT = "kmeans-model"
VERSION = 1


def _file_mode(target: Path) -> int:
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename,
    so a crash never leaves a half-written file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent or ".")
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


def model_to_dict(model: Any) -> dict[str, Any]:
    model._check_fitted()
    distance = model.distance_.name
    if distance not in registry.distances:
        raise ModelFormatError(
            f"distance {distance!r} is not registered by name, so a loaded model could not find it; "
            "register it with kmeans.register_distance first"
        )
    return {
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


def save_model(model: Any, path: str | os.PathLike[str]) -> None:
    """Write a fitted ``KMeans`` to ``path`` as JSON, atomically."""
    text = json.dumps(model_to_dict(model), indent=1, allow_nan=False)
    write_atomic(path, text.encode("utf-8"))


def _require(cond: bool, path: Any, what: str) -> None:
    if not cond:
        raise ModelFormatError(f"{path}: not a valid kmeans model file: {what}")


def load_model(path: str | os.PathLike[str]) -> Any:
    """Read a model written by :meth:`KMeans.save`; checks every field it reads."""
    from kmeans.estimator import KMeans

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{path}: not a valid kmeans model file: invalid JSON ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ModelFormatError(f"{path}: not a valid kmeans model file: not UTF-8 text") from exc
    _require(isinstance(data, dict) and data.get("format") == FORMAT, path, f"missing format marker {FORMAT!r}")
    _require(
        data.get("version") == VERSION,
        path,
        f"unsupported version {data.get('version')!r} (this library reads {VERSION})",
    )
    try:
        centers = np.asarray(data["cluster_centers"], dtype=np.float64)
        k, d = int(data["n_clusters"]), int(data["n_features"])
        sizes = np.asarray(data["cluster_sizes"], dtype=np.float64)
        inertia = float(data["inertia"])
        history = [IterationRecord(**h) for h in data.get("history", [])]
        distance = registry.distances[str(data["distance"])]
        seed, n_iter = int(data["seed"]), int(data["n_iter"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFormatError(f"{path}: not a valid kmeans model file: {exc!r}") from exc
    _require(
        centers.shape == (k, d) and k >= 1 and d >= 1,
        path,
        f"cluster_centers has shape {centers.shape}, expected ({k}, {d})",
    )
    _require(bool(np.isfinite(centers).all()), path, "cluster_centers contains NaN or infinite values")
    _require(sizes.shape == (k,) and bool((sizes >= 0).all()), path, "cluster_sizes must be k non-negative numbers")
    _require(math.isfinite(inertia) and inertia >= 0, path, "inertia must be a finite number >= 0")
    params = data.get("params", {})
    model = KMeans(
        n_clusters=k,
        max_iter=params.get("max_iter", 300),
        tol=params.get("tol", 1e-4),
        seed=seed,
        distance=data["distance"],
    )
    model.cluster_centers_ = centers
    model.inertia_ = inertia
    model.n_iter_ = n_iter
    model.cluster_sizes_ = sizes
    model.history_ = history
    model.converged_ = bool(data.get("converged", False))
    model.seed_ = seed
    model.labels_ = None
    model.n_features_in_ = d
    model.backend_ = registry.backends["numpy"]
    model.distance_ = distance
    return model
