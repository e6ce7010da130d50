from __future__ import annotations

import pytest

from proxy.policy.loader import load_policies
from proxy.policy.model import Policy, PolicySet
from tests.support.servers import POLICIES


@pytest.fixture(scope="session")
def policy_set() -> PolicySet:
    return load_policies(POLICIES)


@pytest.fixture(scope="session")
def sent(policy_set: PolicySet) -> Policy:
    policy = policy_set.by_name("sent")
    assert policy is not None
    return policy
