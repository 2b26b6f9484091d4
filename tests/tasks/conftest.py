import importlib.util
import sys
from pathlib import Path

import pytest


def _load_taskdata():
    if "task_test_data" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "task_test_data", Path(__file__).with_name("taskdata.py")
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules["task_test_data"] = module
        spec.loader.exec_module(module)
    return sys.modules["task_test_data"]


taskdata = _load_taskdata()


@pytest.fixture
def td():
    """The helpers of tests/tasks/taskdata.py."""
    return taskdata


@pytest.fixture
def shapes(db):
    return taskdata.make_dataset()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Example picks are cached per batch id, and ids repeat across tests' databases."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
