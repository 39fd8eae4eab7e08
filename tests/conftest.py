"""Shared pytest set-up (keep small): one intra-op thread so parallel test runs share the 2 CPU cores."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _single_thread_torch():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
