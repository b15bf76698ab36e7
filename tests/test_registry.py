"""Name -> strategy registries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from kmeans import AssignStep, Backend, Initializer, KMeans, UpdateStep, registry
from kmeans.distance.base import Distance
from kmeans.distance.l2 import L2, SquaredEuclidean, WeightedMean
from kmeans.errors import MissingDependencyError, UnknownStrategyError
from kmeans.init.explicit import ExplicitCenters
from kmeans.registry import Registry, register_backend, register_distance, register_initializer


@pytest.fixture
def scratch() -> Registry[object]:
    return Registry("widget")


@pytest.fixture
def restore_registries() -> Iterator[None]:
    regs = (registry.backends, registry.initializers, registry.distances)
    saved = [(dict(r._entries), dict(r._hints)) for r in regs]
    yield
    for r, (entries, hints) in zip(regs, saved, strict=True):
        r._entries, r._hints = entries, hints


def test_builtin_names_are_registered() -> None:
    assert "numpy" in registry.backends
    assert {"random", "k-means++"} <= set(registry.initializers)
    assert {"l1", "l2"} <= set(registry.distances)


def test_register_then_look_up(scratch: Registry[object]) -> None:
    thing = object()
    scratch.register("a", thing)
    assert scratch["a"] is thing
    assert list(scratch) == ["a"] and len(scratch) == 1


def test_registering_a_taken_name_needs_clobber(scratch: Registry[object]) -> None:
    first, second = object(), object()
    scratch.register("a", first)
    with pytest.raises(ValueError, match=r"widget 'a' is already registered; pass clobber=True"):
        scratch.register("a", second)
    assert scratch["a"] is first
    scratch.register("a", second, clobber=True)
    assert scratch["a"] is second


@pytest.mark.parametrize("name", ["", None, 3])
def test_names_must_be_non_empty_strings(scratch: Registry[object], name: object) -> None:
    with pytest.raises(ValueError, match="a widget name must be a non-empty string"):
        scratch.register(name, object())  # type: ignore[arg-type]


def test_unknown_name_lists_the_known_ones(scratch: Registry[object]) -> None:
    scratch.register("beta", object())
    scratch.register("alpha", object())
    with pytest.raises(UnknownStrategyError, match=r"unknown widget 'gamma'; known widgets: 'alpha', 'beta'"):
        scratch["gamma"]


def test_unknown_strategy_error_is_a_value_error(scratch: Registry[object]) -> None:
    with pytest.raises(ValueError, match="unknown widget 'nothing'"):
        scratch["nothing"]


def test_membership_and_get_follow_the_mapping_contract(scratch: Registry[object]) -> None:
    # Regression: Mapping's __contains__/get catch KeyError only, so a miss used to raise.
    thing = object()
    scratch.register("a", thing)
    assert "nothing" not in scratch
    assert scratch.get("nothing") is None
    assert scratch.get("nothing", thing) is thing
    assert "a" in scratch and scratch.get("a") is thing


def test_membership_does_not_import_a_lazy_entry(scratch: Registry[object]) -> None:
    scratch.register("fancy", "kmeans_no_such_module_xyz:Engine")
    assert "fancy" in scratch
    assert not scratch.is_loaded("fancy")


def test_lazy_entry_is_imported_on_first_use_and_cached(scratch: Registry[object]) -> None:
    scratch.register("sqe", "kmeans.distance.l2:SquaredEuclidean")
    assert not scratch.is_loaded("sqe")
    first = scratch["sqe"]
    assert isinstance(first, SquaredEuclidean)  # a class is instantiated with no arguments
    assert scratch.is_loaded("sqe")
    assert scratch["sqe"] is first


def test_lazy_entry_may_name_an_instance(scratch: Registry[object]) -> None:
    scratch.register("l2", "kmeans.distance.l2:L2")
    assert scratch["l2"] is L2


def test_lazy_entry_with_a_missing_module_gives_the_install_hint(scratch: Registry[object]) -> None:
    scratch.register("fancy", "kmeans_no_such_module_xyz.engine:Engine", install_hint="pip install 'kmeans[fancy]'")
    with pytest.raises(MissingDependencyError, match=r"widget 'fancy' needs a package.*pip install 'kmeans\[fancy\]'"):
        scratch["fancy"]
    assert not scratch.is_loaded("fancy")


def test_missing_dependency_error_is_an_import_error(scratch: Registry[object]) -> None:
    scratch.register("fancy", "kmeans_no_such_module_xyz:Engine")
    with pytest.raises(ImportError, match="kmeans_no_such_module_xyz"):
        scratch["fancy"]


def test_repr_names_the_kind_and_entries(scratch: Registry[object]) -> None:
    scratch.register("a", object())
    assert repr(scratch) == "Registry('widget', ['a'])"


def test_registered_initializer_is_used_by_name(restore_registries: None) -> None:
    register_initializer("corners", ExplicitCenters([[0.0, 0.0], [10.0, 10.0]]))
    X = np.array([[0.0, 1.0], [1.0, 0.0], [10.0, 9.0], [9.0, 10.0]])
    model = KMeans(2, init="corners", max_iter=1, tol=0.0).fit(X)
    assert model.cluster_centers_.tolist() == [[0.5, 0.5], [9.5, 9.5]]


def test_registered_distance_is_used_by_name_and_clobber_is_required(restore_registries: None) -> None:
    mine = Distance(name="mine", assign=SquaredEuclidean(), update=WeightedMean())
    register_distance("mine", mine)
    X = np.array([[0.0], [1.0], [10.0]])
    assert KMeans(2, distance="mine", seed=0).fit(X).distance_ is mine
    with pytest.raises(ValueError, match="already registered"):
        register_distance("mine", mine)
    register_distance("mine", L2, clobber=True)
    assert registry.distances["mine"] is L2


@pytest.mark.parametrize(
    ("register", "reg"),
    [
        (register_backend, registry.backends),
        (register_initializer, registry.initializers),
        (register_distance, registry.distances),
    ],
)
def test_public_register_functions_accept_an_install_hint(restore_registries: None, register: Any, reg: Any) -> None:
    register("needs-extra", "kmeans_no_such_module_xyz:Thing", install_hint="pip install 'kmeans[extra]'")
    with pytest.raises(MissingDependencyError, match=r"pip install 'kmeans\[extra\]'"):
        reg["needs-extra"]


@pytest.mark.parametrize("name", sorted(registry.backends))
def test_every_registered_backend_satisfies_the_protocol(name: str) -> None:
    assert isinstance(registry.backends[name], Backend)
    assert registry.backends[name].name == name


@pytest.mark.parametrize("name", sorted(registry.initializers))
def test_every_registered_initializer_satisfies_the_protocol(name: str) -> None:
    assert isinstance(registry.initializers[name], Initializer)
    assert registry.initializers[name].name == name


@pytest.mark.parametrize("name", sorted(registry.distances))
def test_every_registered_distance_pairs_an_assign_and_an_update(name: str) -> None:
    distance = registry.distances[name]
    assert isinstance(distance.assign, AssignStep)
    assert isinstance(distance.update, UpdateStep)
    assert distance.name == name


def test_every_optional_protocol_member_is_documented_on_its_protocol() -> None:
    import inspect

    from kmeans import protocols

    docs = "".join(
        inspect.getdoc(cls) or ""
        for cls in (
            protocols.Dataset,
            protocols.AssignStep,
            protocols.UpdateStep,
            protocols.Initializer,
            protocols.Backend,
        )
    )
    missing = [name for name in protocols.OPTIONAL_MEMBERS if f"``{name}" not in docs]
    assert missing == []
