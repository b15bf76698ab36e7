"""The paper's published numbers: Tables 1-3 (seconds on Google Colab) and its MLlib iteration count.

Data only, so that the report (:mod:`kmeans.bench.paper`) and the figures
(:mod:`kmeans.bench.plots`) both read them without importing each other.
"""

from __future__ import annotations

PAPER_KS: tuple[int, ...] = (2, 3, 5, 8, 10)
PAPER_ITERATIONS: tuple[int, ...] = (1, 5, 10, 20, 50)

_T1 = (
    (0.3382, 0.7623, 1.6039, 4.6291, 7.6653),
    (0.3047, 1.4035, 2.2722, 4.3261, 10.2454),
    (0.3929, 1.9001, 3.6076, 6.6482, 14.6531),
    (0.5585, 2.6335, 4.5622, 8.7303, 25.3359),
    (0.7302, 2.5217, 5.4514, 12.3100, 26.0757),
)
_T2 = (
    (23.3564, 30.8672, 45.0538, 72.2435, 162.8648),
    (20.8825, 31.2942, 46.0326, 83.1631, 177.8211),
    (21.1502, 38.8359, 55.3694, 94.4785, 212.5548),
    (32.1805, 48.3324, 71.7056, 119.3261, 263.1677),
    (31.7725, 54.0019, 82.3575, 135.0163, 295.9264),
)
#: The paper's Table 1 (its NumPy code, Google Colab), seconds by ``(k, iterations)``.
PAPER_TABLE1: dict[tuple[int, int], float] = {
    (k, it): _T1[i][j] for i, k in enumerate(PAPER_KS) for j, it in enumerate(PAPER_ITERATIONS)
}
#: The paper's Table 2 (its hand-written RDD code, local Spark on Colab), seconds.
PAPER_TABLE2: dict[tuple[int, int], float] = {
    (k, it): _T2[i][j] for i, k in enumerate(PAPER_KS) for j, it in enumerate(PAPER_ITERATIONS)
}
#: The paper's Table 3 (``pyspark.ml`` KMeans, MLlib's own iteration count), seconds by k.
PAPER_TABLE3: dict[int, float] = {2: 20.2106, 3: 23.6867, 5: 19.4070, 8: 22.5226, 10: 21.4224}

#: Iteration count standing in for "MLlib's own" (the A.3 port cannot choose it).
MLLIB_DEFAULT_ITER = 20
