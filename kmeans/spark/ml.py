"""A ``pyspark.ml`` Estimator/Model pair that runs this library's backends.

:class:`KMeans` takes the Params of ``pyspark.ml.clustering.KMeans`` with its names and
defaults (``k=2``, ``maxIter=20``, ``tol=1e-4``, ``initMode="k-means||"``, ``seed``,
``featuresCol``, ``predictionCol``, ``weightCol``) plus ours: ``backend`` (``"spark-rdd"``,
the default, runs the Lloyd driver on cached NumPy blocks; ``"spark-ml"`` hands the fit to
MLlib) and ``distance`` (``"l2"`` or ``"l1"``). Its fit is ``kmeans.KMeans(...).fit(df,
sample_weight=weightCol, features=featuresCol)``, so the rules of the library hold (same
seed, same centers on every backend; ``tol`` is absolute). :class:`KMeansModel` adds
``predictionCol`` in ``transform``, works in ``Pipeline`` and ``CrossValidator``, and saves
as Spark's own ``KMeansModel`` does: params metadata plus one parquet row per center.
"""

# ruff: noqa: N802, N815  (pyspark.ml's names: getK, setMaxIter, initMode, ...)

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.linalg import Vectors
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import (
    HasFeaturesCol,
    HasMaxIter,
    HasPredictionCol,
    HasSeed,
    HasTol,
    HasWeightCol,
)
from pyspark.ml.util import (
    DefaultParamsReadable,
    DefaultParamsReader,
    DefaultParamsWritable,
    DefaultParamsWriter,
    MLReadable,
    MLReader,
    MLWritable,
    MLWriter,
)

from kmeans.errors import ModelFormatError
from kmeans.estimator import KMeans as _KMeans

#: The layout version of a saved :class:`KMeansModel` (in its metadata, beside Spark's fields).
FORMAT_VERSION = 1


class _Setter:
    """pyspark's ``setX(value)`` for one Param: sets it and returns the object, for chaining."""

    def __init__(self, param: str) -> None:
        self.param = param

    def __get__(self, obj: Any, objtype: type | None = None) -> Callable[[Any], Any]:
        return lambda value: obj._set(**{self.param: value})


class _KMeansParams(HasFeaturesCol, HasPredictionCol, HasWeightCol, HasMaxIter, HasTol, HasSeed):  # type: ignore[misc,unused-ignore]
    """The Params shared by :class:`KMeans` and :class:`KMeansModel`."""

    k: Param[int] = Param(
        Params._dummy(), "k", "The number of clusters to create. Must be >= 1.", typeConverter=TypeConverters.toInt
    )
    initMode: Param[str] = Param(
        Params._dummy(),
        "initMode",
        "The initialization: 'k-means||' (default, as MLlib), 'random', 'auto' (the backend's default), "
        "or another initializer registered with kmeans ('k-means++', 'per-partition', 'take-sample').",
        typeConverter=TypeConverters.toString,
    )
    backend: Param[str] = Param(
        Params._dummy(),
        "backend",
        "The kmeans backend that runs the fit: 'spark-rdd' (default) or 'spark-ml' (MLlib does the fit).",
        typeConverter=TypeConverters.toString,
    )
    distance: Param[str] = Param(
        Params._dummy(),
        "distance",
        "'l2' (k-means, default) or 'l1' (k-medians: exact weighted medians; not on backend 'spark-ml').",
        typeConverter=TypeConverters.toString,
    )

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._setDefault(k=2, maxIter=20, tol=1e-4, initMode="k-means||", backend="spark-rdd", distance="l2")

    def getK(self) -> int:
        return int(self.getOrDefault(self.k))

    def getInitMode(self) -> str:
        return str(self.getOrDefault(self.initMode))

    def getBackend(self) -> str:
        return str(self.getOrDefault(self.backend))

    def getDistance(self) -> str:
        return str(self.getOrDefault(self.distance))

    def _weight_column(self) -> str | None:
        return self.getWeightCol() if self.isDefined(self.weightCol) and self.getWeightCol() else None


class KMeans(  # type: ignore[misc,unused-ignore]
    Estimator["KMeansModel"], _KMeansParams, DefaultParamsReadable["KMeans"], DefaultParamsWritable
):
    """K-means as a ``pyspark.ml`` Estimator: ``fit(df)`` gives a :class:`KMeansModel`.

    One initialization per fit, as MLlib (``n_init=1``); pass ``seed``, since pyspark's
    default seed is a hash of the class name that changes from process to process.
    """

    def __init__(self, **params: Any) -> None:
        """The Params by keyword, as :meth:`setParams` takes them."""
        super().__init__()
        self.setParams(**params)

    @keyword_only
    def setParams(
        self,
        *,
        featuresCol: str = "features",
        predictionCol: str = "prediction",
        k: int = 2,
        initMode: str = "k-means||",
        maxIter: int = 20,
        tol: float = 1e-4,
        seed: int | None = None,
        weightCol: str | None = None,
        backend: str = "spark-rdd",
        distance: str = "l2",
    ) -> KMeans:
        """Set the given Params (keyword arguments only)."""
        return self._set(**self._input_kwargs)  # type: ignore[attr-defined,no-any-return,unused-ignore]

    setK = _Setter("k")
    setInitMode = _Setter("initMode")
    setMaxIter = _Setter("maxIter")
    setTol = _Setter("tol")
    setSeed = _Setter("seed")
    setFeaturesCol = _Setter("featuresCol")
    setPredictionCol = _Setter("predictionCol")
    setWeightCol = _Setter("weightCol")
    setBackend = _Setter("backend")
    setDistance = _Setter("distance")

    def _fit(self, dataset: Any) -> KMeansModel:
        estimator = _KMeans(
            n_clusters=self.getK(),
            init=self.getInitMode(),
            n_init=1,  # MLlib runs one initialization whatever initMode
            max_iter=self.getMaxIter(),
            tol=self.getTol(),
            seed=self.getSeed(),
            backend=self.getBackend(),
            distance=self.getDistance(),
        )
        estimator.fit(dataset, sample_weight=self._weight_column(), features=self.getFeaturesCol())
        model = KMeansModel(estimator)
        return self._copyValues(model)  # type: ignore[no-any-return,unused-ignore]


class KMeansModel(Model, _KMeansParams, MLWritable, MLReadable["KMeansModel"]):  # type: ignore[misc,unused-ignore]
    """A fitted :class:`KMeans`: ``transform(df)`` adds ``predictionCol``, the closest center of each row.

    ``kmeans_model`` is the fitted :class:`kmeans.KMeans` behind it (``inertia_``,
    ``cluster_sizes_``, ``history_``, ...).
    """

    def __init__(self, kmeans_model: _KMeans | None = None) -> None:
        super().__init__()
        self.kmeans_model = kmeans_model

    def _fitted(self) -> _KMeans:
        if self.kmeans_model is None:
            raise ModelFormatError(
                "this KMeansModel holds no fitted model; get one from KMeans.fit or KMeansModel.load"
            )
        return self.kmeans_model

    def clusterCenters(self) -> list[np.ndarray]:
        """The centers, one float64 array each, as ``pyspark.ml.clustering.KMeansModel`` gives them."""
        return [row.copy() for row in self._fitted().cluster_centers_]

    @property
    def hasSummary(self) -> bool:
        return False  # the training attributes are on kmeans_model

    def predict(self, value: Any) -> int:
        """The closest center of one feature vector."""
        point = np.asarray(value.toArray() if hasattr(value, "toArray") else value, dtype=np.float64)
        return int(self._fitted().predict(point.reshape(1, -1))[0])

    setFeaturesCol = _Setter("featuresCol")
    setPredictionCol = _Setter("predictionCol")

    def _transform(self, dataset: Any) -> Any:
        output = self.getPredictionCol()
        if output in dataset.columns:
            raise ValueError(f"the DataFrame already has a column {output!r}; set predictionCol to another name")
        labelled = self._fitted().predict(dataset, features=self.getFeaturesCol())
        return labelled if output == "prediction" else labelled.withColumnRenamed("prediction", output)

    def write(self) -> MLWriter:
        return _ModelWriter(self)

    @classmethod
    def read(cls) -> MLReader[KMeansModel]:
        return _ModelReader()


class _ModelWriter(MLWriter):  # type: ignore[misc,unused-ignore]
    """Spark's layout for a K-means model: ``metadata/`` (params, JSON) and ``data/`` (parquet, one row per center)."""

    def __init__(self, instance: KMeansModel) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        fitted = self.instance._fitted()
        extra = {
            "kmeans": {
                "version": FORMAT_VERSION,
                "nFeatures": int(fitted.n_features_in_),
                "inertia": None if math.isnan(fitted.inertia_) else float(fitted.inertia_),  # null: not known
                "nIter": int(fitted.n_iter_),
                "converged": bool(fitted.converged_),
                "clusterSizes": [float(s) for s in fitted.cluster_sizes_],
                "seed": int(fitted.seed_),
            }
        }
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sparkSession, extraMetadata=extra)
        rows = [(i, Vectors.dense(c.tolist())) for i, c in enumerate(fitted.cluster_centers_)]
        frame = self.sparkSession.createDataFrame(rows, ["clusterIdx", "clusterCenter"])
        frame.coalesce(1).write.parquet(os.path.join(path, "data"))


class _ModelReader(MLReader["KMeansModel"]):  # type: ignore[misc,unused-ignore]
    def load(self, path: str) -> KMeansModel:
        from kmeans.interop import from_centers

        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        ours = metadata.get("kmeans")
        if not isinstance(ours, dict) or ours.get("version") != FORMAT_VERSION:
            raise ModelFormatError(f"{path}: not a kmeans.spark.KMeansModel of format version {FORMAT_VERSION}")
        rows = self.sparkSession.read.parquet(os.path.join(path, "data")).orderBy("clusterIdx").collect()
        centers = np.array([row.clusterCenter.toArray() for row in rows], dtype=np.float64).reshape(len(rows), -1)
        k, d = len(rows), int(ours["nFeatures"])
        if centers.shape != (k, d) or [row.clusterIdx for row in rows] != list(range(k)):
            raise ModelFormatError(f"{path}: the data has centers of shape {centers.shape}, expected ({k}, {d})")
        model = KMeansModel()
        model._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(model, metadata)
        model.kmeans_model = from_centers(
            centers,
            distance=model.getDistance(),
            backend=model.getBackend(),
            inertia=math.nan if ours["inertia"] is None else float(ours["inertia"]),
            n_iter=int(ours["nIter"]),
            cluster_sizes=ours["clusterSizes"],
            seed=int(ours["seed"]),
            converged=bool(ours["converged"]),
            features=model.getFeaturesCol(),
            max_iter=model.getMaxIter(),
            tol=model.getTol(),
        )
        return model
