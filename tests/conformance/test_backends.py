"""Every registered backend, and the toy thread-pool backend, run the conformance suite.

Backends are enrolled from :data:`kmeans.registry.backends`: a newly registered one runs
every test with full claims unless :data:`CLAIMS` narrows them. Spark backends are marked
``spark`` and share the tests' local session.
"""

from __future__ import annotations

from typing import Any

import pytest

from kmeans import registry
from kmeans.backends.numpy import NumPyBackend
from tests.conformance.suite import BackendConformance, Profile, registered_profile
from tests.conformance.toy_backends import ThreadPoolBackend

SPARK = {"spark-rdd", "spark-ml"}

#: Narrowed claims. ``numpy`` runs in another layout than the reference (2 threads, small
#: blocks), so its agreement is layout independence. ``spark-ml`` hands the fit to MLlib:
#: MLlib's own seeding, empty-cluster and convergence rules (it stops once no center moves),
#: L2 and cosine only, and no weights with explicit centers; what it shares with ``numpy`` is the Lloyd
#: run from the same explicit centers.
CLAIMS: dict[str, Profile] = {
    "numpy": Profile("numpy", lambda: NumPyBackend(n_threads=2, block_rows=64)),
    "spark-ml": Profile(
        "spark-ml",
        lambda: registry.backends["spark-ml"],
        initializers=("explicit",),
        distances=("l2", "cosine"),
        weights=False,
        driver_rules=False,
    ),
}


def _param(name: str) -> Any:
    return pytest.param(name, marks=[pytest.mark.spark] if name in SPARK else [], id=name)


class TestRegisteredBackend(BackendConformance):
    @pytest.fixture(scope="class", params=[_param(name) for name in registry.backends])
    def profile(self, request: pytest.FixtureRequest) -> Profile:
        name: str = request.param
        if name in SPARK:
            from tests.spark.conftest import local_test_session

            local_test_session()  # the tests' session (executors import this checkout)
        return CLAIMS.get(name) or registered_profile(name)


class TestThreadPoolBackend(BackendConformance):
    """A backend written outside the library, against its public API only."""

    @pytest.fixture(scope="class")
    def profile(self) -> Profile:
        return Profile("toy-threads", ThreadPoolBackend)
