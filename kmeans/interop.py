"""Model interchange: a fitted :class:`~kmeans.KMeans` to and from scikit-learn's and Spark's K-means models.

What maps:

| here | ``sklearn.cluster.KMeans`` | ``pyspark.ml.clustering.KMeansModel`` |
|---|---|---|
| ``cluster_centers_`` | ``cluster_centers_`` | ``clusterCenters()`` |
| ``labels_``, ``inertia_``, ``n_iter_`` | the same names | ``summary.predictions``/``summary.numIter`` (not kept) |
| ``cluster_sizes_`` | row counts of ``labels_`` | ``summary.clusterSizes`` when the model has a summary |
| ``n_features_in_``, ``feature_names_in_`` | the same names | centers' length; ``featuresCol``: ``features_`` |
| ``seed_`` | ``random_state`` (when an int) | ``seed`` |

Only ``distance="l2"`` models convert out: both libraries assign by Euclidean distance.
Predictions are identical after a round trip because the centers are copied bit for bit
and every library gives a row the closest center (all three break exact ties to the
lowest index). What a source does not record is NaN (``inertia_``) or zero
(``n_iter_``), never invented; such a model saves (``inertia`` is ``null`` in the file,
read back as NaN) and loads like any other. scikit-learn and pyspark are imported only when called.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kmeans import registry
from kmeans._types import Float64Array
from kmeans.errors import ValidationError
from kmeans.estimator import KMeans

__all__ = ["from_centers", "from_sklearn", "from_spark", "to_sklearn", "to_spark"]


def from_centers(
    centers: Any,
    *,
    distance: Any = "l2",
    backend: Any = "numpy",
    inertia: float = float("nan"),
    n_iter: int = 0,
    cluster_sizes: Any = None,
    labels: Any = None,
    seed: int = 0,
    converged: bool = False,
    features: Any = None,
    feature_names: Any = None,
    **params: Any,
) -> KMeans:
    """A fitted :class:`KMeans` that predicts, transforms and scores with ``centers`` ``(k, d)``.

    ``params`` are further constructor parameters (``max_iter``, ``tol``, ...), recorded as
    given. ``cluster_sizes`` defaults to zeros (unknown) unless ``labels`` are given (then
    their counts).
    """
    c = np.array(centers, dtype=np.float64, order="C")
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < 1:
        raise ValidationError(f"centers has shape {c.shape}; expected (n_clusters, n_features)")
    if not np.isfinite(c).all():
        raise ValidationError("centers contains NaN or infinite values")
    k = c.shape[0]
    model = KMeans(n_clusters=k, init=c, seed=seed, distance=distance, backend=backend, **params)
    if labels is not None and isinstance(labels, np.ndarray):
        labels = labels.astype(np.int32, copy=False)
    if cluster_sizes is None:
        cluster_sizes = (
            np.bincount(labels, minlength=k).astype(np.float64) if isinstance(labels, np.ndarray) else np.zeros(k)
        )
    model.cluster_centers_ = c
    model.inertia_ = float(inertia)
    model.n_iter_ = int(n_iter)
    model.cluster_sizes_ = np.asarray(cluster_sizes, dtype=np.float64)
    model.history_ = []
    model.converged_ = bool(converged)
    model.seed_ = int(seed)
    model.labels_ = labels
    model.n_features_in_ = c.shape[1]
    model.backend_ = registry.backends[backend] if isinstance(backend, str) else backend
    model.distance_ = registry.distances[distance] if isinstance(distance, str) else distance
    if feature_names is not None:
        model.feature_names_in_ = np.asarray(feature_names, dtype=object)
    if features is not None:
        model.features_ = features
    return model


def _require_l2(model: KMeans, target: str) -> Float64Array:
    model._check_fitted()
    if model.distance_ is not registry.distances["l2"]:
        name = getattr(model.distance_, "name", type(model.distance_).__name__)
        raise ValidationError(
            f"only distance='l2' models convert to {target}, which assigns by Euclidean distance; this model uses "
            f"{name!r}, so {target} would predict other labels"
        )
    return model.cluster_centers_


def to_sklearn(model: KMeans) -> Any:
    """A fitted ``sklearn.cluster.KMeans`` with this model's centers (bit for bit), labels and inertia.

    It is fitted on the centers themselves, starting from them (each is then its own
    one-point cluster), so every private attribute scikit-learn needs is its own; the
    centers, ``labels_``, ``inertia_`` and ``n_iter_`` are then this model's.
    """
    from sklearn.cluster import KMeans as SklearnKMeans

    centers = _require_l2(model, "scikit-learn's KMeans")
    k = centers.shape[0]
    out = SklearnKMeans(
        n_clusters=k,
        init=centers.copy(),
        n_init=1,
        max_iter=int(model.max_iter),
        tol=0.0,
        random_state=int(model.seed_) % 2**32,
    )
    out.fit(centers)
    out.cluster_centers_ = centers.copy()
    if isinstance(model.labels_, np.ndarray):
        out.labels_ = model.labels_.astype(np.int32)
    else:  # labels of Spark input (an RDD) or of a loaded model: not the centers' own 0..k-1
        del out.labels_
    out.inertia_ = float(model.inertia_)
    out.n_iter_ = int(model.n_iter_)
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        out.feature_names_in_ = names.copy()
    return out


def from_sklearn(sklearn_model: Any) -> KMeans:
    """Our fitted :class:`KMeans` from a fitted ``sklearn.cluster.KMeans`` (or ``MiniBatchKMeans``)."""
    centers = getattr(sklearn_model, "cluster_centers_", None)
    if centers is None:
        raise ValidationError("the scikit-learn model is not fitted (it has no cluster_centers_)")
    random_state = sklearn_model.get_params().get("random_state")
    labels = getattr(sklearn_model, "labels_", None)
    return from_centers(
        centers,
        inertia=float(getattr(sklearn_model, "inertia_", float("nan"))),
        n_iter=int(getattr(sklearn_model, "n_iter_", 0)),
        labels=np.asarray(labels) if labels is not None else None,
        seed=int(random_state) if isinstance(random_state, (int, np.integer)) and random_state >= 0 else 0,
        feature_names=getattr(sklearn_model, "feature_names_in_", None),
        max_iter=int(sklearn_model.get_params().get("max_iter", 300)),
    )


def to_spark(model: KMeans, *, spark: Any = None) -> Any:
    """A ``pyspark.ml.clustering.KMeansModel`` with this model's centers, in the active (or given) session.

    Built in the JVM from an MLlib model of the same centers, as Spark's own reader does;
    its ``featuresCol`` is the fit's single ``features=`` column if there was one.
    """
    from pyspark.ml.clustering import KMeansModel as SparkKMeansModel
    from pyspark.mllib.common import _py2java
    from pyspark.mllib.linalg import Vectors as MLlibVectors

    from kmeans.backends._spark import session as spark_session

    centers = _require_l2(model, "Spark's KMeansModel")
    session = spark if spark is not None else spark_session.get_session()
    sc = session.sparkContext
    jvm = sc._jvm
    vectors = _py2java(sc, [MLlibVectors.dense(row) for row in centers])
    parent = jvm.org.apache.spark.mllib.clustering.KMeansModel(vectors)
    uid = jvm.org.apache.spark.ml.util.Identifiable.randomUID("KMeansModel")
    out = SparkKMeansModel(jvm.org.apache.spark.ml.clustering.KMeansModel(uid, parent))
    out._resetUid(uid)
    out._transfer_params_from_java()
    features = getattr(model, "features_", None)
    if isinstance(features, str):
        out.setFeaturesCol(features)
    return out


def from_spark(spark_model: Any) -> KMeans:
    """Our fitted :class:`KMeans` from a ``pyspark.ml.clustering.KMeansModel`` (euclidean distance only).

    It predicts DataFrames through the ``spark-ml`` backend, reading the model's ``featuresCol``.
    """
    measure = spark_model.getOrDefault("distanceMeasure")
    if measure != "euclidean":
        raise ValidationError(f"only distanceMeasure='euclidean' models convert; this one uses {measure!r}")
    centers = np.array([np.asarray(c, dtype=np.float64) for c in spark_model.clusterCenters()])
    sizes = None
    if spark_model.hasSummary:
        sizes = np.asarray(spark_model.summary.clusterSizes, dtype=np.float64)
    return from_centers(
        centers,
        backend="spark-ml",
        cluster_sizes=sizes,
        n_iter=int(spark_model.summary.numIter) if spark_model.hasSummary else 0,
        seed=int(spark_model.getOrDefault("seed")),
        features=spark_model.getFeaturesCol(),
        max_iter=int(spark_model.getOrDefault("maxIter")),
        tol=float(spark_model.getOrDefault("tol")),
    )
