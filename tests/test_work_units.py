"""`make test`'s work units (tests/conftest.py): the files that use a shared session warehouse run on one worker."""

from __future__ import annotations

import pytest

from tests.conftest import WORK_UNITS


def test_every_file_that_uses_a_shared_warehouse_is_in_that_warehouses_work_unit(request):
    users: dict[str, set[str]] = {}
    shared = set(WORK_UNITS.values())
    for item in request.session.items:
        for name in shared:
            if name in item.fixturenames:
                users.setdefault(name, set()).add(item.path.name)
    if not users:
        pytest.skip("no test of this session uses a shared warehouse")
    for name, files in users.items():
        assert {file: WORK_UNITS.get(file) for file in files} == dict.fromkeys(files, name)


def test_a_test_file_outside_the_map_is_its_own_unit_and_a_mapped_one_joins_its_warehouse():
    from tests.conftest import work_unit

    assert work_unit("tests/test_profiles_churn.py::test_x") == "simulated_warehouse"
    assert work_unit("tests/test_profiles.py::test_y[a::b]") == "simulated_warehouse"
    assert work_unit("tests/test_helpers.py::test_z[a]") == "tests/test_helpers.py"
