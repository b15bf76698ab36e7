"""BASELINES: the paper's own code (Appendix A.1, A.2, A.3), ported as-is, NOT for use.

These functions exist only so that ``kmeans bench paper`` and ``tests/benchmarks`` can
time the paper's implementations on this machine, beside ours, in the same run. They
are slow on purpose (that is what is being measured) and keep the paper's bugs: the
NumPy port sets the mean of an empty cluster to infinity, the RDD port runs a Python
loop per distinct pixel and drops empty clusters (then fails with ``IndexError``), and
ties go to the *last* center in the NumPy port. Use :class:`kmeans.KMeans` instead.

What was changed to make the code run here, and nothing else:

- ``np.infty`` (gone in NumPy 2) is written ``np.inf``; the broken indentation of the
  report is restored; the global ``sc`` / ``spark`` of the notebook are parameters.
- Every port accepts ``init_centers`` (``(k, 3)``) so that comparisons can start from
  the same centers as the other implementations; by default each keeps its own random
  initialization (``np.random.choice`` of pixel coordinates / ``takeSample``).
- The ports return ``(image, centers)`` (and the RDD port its per-iteration times,
  which the notebook printed) instead of only the image, so quality can be checked.
- A.2 widens each pixel's channel values to ``np.int64`` scalars. The notebook ran on
  NumPy 1.x, where ``np.uint8 * int`` promoted to int64; under NumPy 2 (NEP 50) the
  literal code computes ``c * count`` in uint8 and silently wraps, giving wrong means.
  The per-pixel work is still NumPy-scalar arithmetic in a Python loop, as in the paper.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["paper_kmeans_numpy", "paper_kmeans_spark", "paper_kmeans_spark_ml"]


def paper_kmeans_numpy(
    img: NDArray[Any], num_clusters: int, num_iter: int = 10, *, init_centers: NDArray[Any] | None = None
) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """Appendix A.1 (``kmeans_numpy``): one full-image distance pass per cluster, ported as-is.

    ``img`` is an ``(h, w, 3)`` array. Returns ``(new_img, means)``: the quantized image
    (``int``) and the ``(k, 3)`` means after ``num_iter`` iterations (``inf`` rows for
    clusters that were empty in the last iteration).
    """
    numrows = img.shape[0]
    numcols = img.shape[1]
    k = num_clusters
    no_label = num_clusters
    poolX = range(numcols)
    poolY = range(numrows)

    means = np.zeros((k, 3), "d")
    if init_centers is None:
        # The report indexes ``init_pixels[label, 1]``, which needs a (k, 2) array: the
        # transpose was lost in the report's formatting (as printed it fails for k > 2).
        init_pixels = np.array([np.random.choice(poolX, k), np.random.choice(poolY, k)]).T  # noqa: NPY002
        for label in range(k):
            means[label, :3] = img[init_pixels[label, 1], init_pixels[label, 0], :3]
    else:
        means[:, :3] = np.asarray(init_centers, dtype=np.float64)
    labels = np.full((numrows, numcols), fill_value=no_label)
    for _i in range(num_iter):
        shape = (numrows, numcols)
        opt_labels = np.full(shape, fill_value=no_label)
        min_dist = np.full(shape, fill_value=np.inf)
        col_coord, row_coord = np.meshgrid(range(numcols), range(numrows))
        for label in range(k):
            full_dist = np.sum(np.square(means[label, :3] - img.astype(float)), axis=2)
            min_dist = np.where(min_dist < full_dist, min_dist, full_dist)
            opt_labels = np.where(min_dist < full_dist, opt_labels, label)
        labels = opt_labels
        col_coord, row_coord = np.meshgrid(range(numcols), range(numrows))  # noqa: RUF059 (unused, as in the paper)
        for label in range(k):
            if label not in labels:
                means[label, :] = np.inf
            else:
                means[label, :3] = np.mean(img[np.where(labels == label)], axis=0)
    new_img = np.zeros(img.shape)
    for label in range(k):
        if label in labels:  # the report takes the mean of an empty selection here (NaN + warning)
            new_img[labels == label] = np.mean(img[np.where(labels == label)], axis=0)
    return new_img.astype(int), means


def paper_kmeans_spark(
    sc: Any,
    img: NDArray[Any],
    num_clusters: int,
    num_iter: int,
    *,
    init_centers: NDArray[Any] | None = None,
) -> tuple[NDArray[Any], NDArray[np.float64], list[float]]:
    """Appendix A.2 (``kmeans_spark``): the hand-written RDD version, ported as-is.

    Per-pixel Python ``map_pixels``, pixels grouped with their counts by ``reduceByKey``,
    one ``reduceByKey`` + ``collect`` + ``broadcast`` per iteration, ``takeSample`` init.
    Returns ``(new_img, final_means, iteration_times)``; ``iteration_times[i]`` is the
    wall time of iteration ``i`` (the first one also builds the cached grouped RDD,
    as in the paper's Figure 5).
    """
    k = sc.broadcast(num_clusters)
    pixels = sc.parallelize(img).flatMap(lambda x: [tuple(px.astype(np.int64)) for px in x])
    if init_centers is None:
        cluster_means = sc.broadcast(np.array(pixels.takeSample(False, k.value, 0)))
    else:
        cluster_means = sc.broadcast(np.asarray(init_centers, dtype=np.float64))
    pixels_grouped = pixels.map(lambda x: (x, 1)).reduceByKey(lambda x, y: x + y).cache()

    def map_pixels(pixel: Any) -> tuple[int, Any]:
        p = pixel[0]
        cmeans = cluster_means.value
        closest = k.value
        min_diff = 256**2 * 3
        for i in range(k.value):
            norm = 0
            for j in range(len(p)):
                norm += (cmeans[i][j] - p[j]) ** 2
            if norm < min_diff:
                closest = i
                min_diff = norm
        return (closest, pixel)

    iteration_times: list[float] = []
    avg_rgb = None
    broadcasts = [k, cluster_means]
    for _i in range(num_iter):
        iter_time = time.time()
        old_rgb = avg_rgb
        avg_rgb = (
            pixels_grouped.map(map_pixels)
            .map(lambda x: (x[0], (tuple([c * x[1][1] for c in x[1][0]]), x[1][1])))
            .reduceByKey(lambda x, y: ([sum(z) for z in zip(x[0], y[0], strict=True)], x[1] + y[1]))
            .map(lambda x: tuple([z / x[1][1] for z in x[1][0]]))
            .cache()
        )
        cluster_means = sc.broadcast(avg_rgb.collect())
        broadcasts.append(cluster_means)
        if old_rgb:
            old_rgb.unpersist()
        iteration_times.append(time.time() - iter_time)
    final_means = np.array([list(x) for x in cluster_means.value])
    opt_labels = np.full((img.shape[0], img.shape[1]), fill_value=num_clusters)
    min_dist = np.full((img.shape[0], img.shape[1]), fill_value=np.inf)
    for label in range(num_clusters):
        rgb_dist = np.sum(np.square(final_means[label,] - img.astype(float)), axis=2)
        min_dist = np.where(min_dist < rgb_dist, min_dist, rgb_dist)
        opt_labels = np.where(min_dist < rgb_dist, opt_labels, label)
    new_img = np.zeros(img.shape)
    for label in range(num_clusters):
        new_img[opt_labels == label] = final_means[label,]
    # Not in the paper (it leaked them): release what this run cached, so that runs in
    # one benchmark do not slow each other down.
    if avg_rgb is not None:
        avg_rgb.unpersist()
    pixels_grouped.unpersist()
    for b in broadcasts:
        b.destroy()
    return new_img.astype(int), final_means, iteration_times


def paper_kmeans_spark_ml(
    spark: Any, img: NDArray[Any], num_clusters: int, *, init_centers: NDArray[Any] | None = None
) -> tuple[NDArray[Any], NDArray[np.float64]]:
    """Appendix A.3 (``kmeans_spark_ml``): ``pyspark.ml`` KMeans on a VectorAssembler column, as-is.

    It runs MLlib's defaults (k-means|| init, ``maxIter=20``, ``tol=1e-4``, ``seed=1``):
    the paper could not set the iteration count. ``pyspark.ml`` cannot take initial
    centers, so ``init_centers`` is accepted for a uniform signature and only checked.
    Returns ``(new_img, final_means)``; centers come back ordered by cluster index.
    """
    from pyspark.ml.clustering import KMeans as SparkKMeans
    from pyspark.ml.feature import VectorAssembler

    if init_centers is not None and np.asarray(init_centers).shape != (num_clusters, 3):
        raise ValueError(f"init_centers must have shape ({num_clusters}, 3)")
    sc = spark.sparkContext
    img_rdd = sc.parallelize(img).flatMap(lambda x: [px.tolist() for px in x])
    df = spark.createDataFrame(img_rdd, schema=["r", "g", "b"])
    vecAssembler = VectorAssembler(inputCols=["r", "g", "b"], outputCol="features")
    input_df = vecAssembler.transform(df)
    kmeans = SparkKMeans(k=num_clusters, seed=1)
    model = kmeans.fit(input_df.select("features"))
    transformed = model.transform(input_df)
    cluster_means = (
        transformed.select("r", "g", "b", "prediction")
        .groupBy("prediction")
        .avg("r", "g", "b")
        .orderBy("prediction")  # not in the paper: its row order is arbitrary
        .toPandas()
        .to_numpy()  # type: ignore[attr-defined]
    )
    final_means = cluster_means[:, 1:]
    opt_labels = np.full((img.shape[0], img.shape[1]), fill_value=num_clusters)
    min_dist = np.full((img.shape[0], img.shape[1]), fill_value=np.inf)
    for label in range(final_means.shape[0]):
        rgb_dist = np.sum(np.square(final_means[label,] - img.astype(float)), axis=2)
        min_dist = np.where(min_dist < rgb_dist, min_dist, rgb_dist)
        opt_labels = np.where(min_dist < rgb_dist, opt_labels, label)
    new_img = np.zeros(img.shape)
    for label in range(final_means.shape[0]):
        new_img[opt_labels == label] = final_means[label,]
    return new_img.astype(int), np.asarray(final_means, dtype=np.float64)
