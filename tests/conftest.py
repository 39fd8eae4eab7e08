"""Shared pytest set-up (keep small): one intra-op thread so parallel test runs share the 2 CPU cores."""
import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _single_thread_torch():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _logs_reach_caplog():
    """`setup_logger` (called by tests that run `default_setup`) stops propagation of the package
    logger to avoid double printing; tests that read logs through caplog need it back."""
    import logging

    package_logger = logging.getLogger("net_detr2")
    previous = package_logger.propagate
    package_logger.propagate = True
    yield
    package_logger.propagate = previous
