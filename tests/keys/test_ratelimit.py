"""The verification limiter: a token bucket per client and one for the process, on an injected clock."""

from __future__ import annotations

import pytest

from proxy.errors import GatewayError
from proxy.keys.ratelimit import Rate, VerificationLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


CLIENT, OVERALL = Rate(60, 3), Rate(600, 100)


def limiter(clock: Clock, per_client: Rate = CLIENT, overall: Rate = OVERALL,
            trusted: tuple[str, ...] = (), max_clients: int = 10_000) -> VerificationLimiter:
    return VerificationLimiter(per_client=per_client, overall=overall, trusted_proxies=trusted,
                               max_clients=max_clients, clock=clock)


def admitted(lim: VerificationLimiter, peer: str, times: int, forwarded_for: str | None = None) -> int:
    count = 0
    for _ in range(times):
        try:
            lim.admit(peer, forwarded_for)
        except GatewayError:
            continue
        count += 1
    return count


def retry_after(lim: VerificationLimiter, peer: str, forwarded_for: str | None = None) -> str:
    with pytest.raises(GatewayError) as caught:
        lim.admit(peer, forwarded_for)
    error = caught.value
    assert (error.status, error.code, error.outcome) == (429, "rate_limited", "not_sent")
    return error.headers["retry-after"]


def test_a_client_gets_its_burst_then_one_token_per_interval() -> None:
    clock = Clock()
    lim = limiter(clock, per_client=Rate(per_minute=12, burst=3))  # one every 5 s
    assert admitted(lim, "10.0.0.1", 10) == 3
    assert retry_after(lim, "10.0.0.1") == "5"
    clock.now += 2.0
    assert retry_after(lim, "10.0.0.1") == "3"  # rounded up, never 0
    clock.now += 3.0
    assert admitted(lim, "10.0.0.1", 10) == 1
    clock.now += 3600.0  # idle for an hour: the bucket holds no more than its burst
    assert admitted(lim, "10.0.0.1", 10) == 3


def test_the_global_bucket_caps_every_client_together() -> None:
    clock = Clock()
    lim = limiter(clock, per_client=Rate(60, 3), overall=Rate(per_minute=60, burst=5))
    counts = [admitted(lim, f"10.0.0.{i}", 3) for i in range(1, 5)]
    assert counts == [3, 2, 0, 0]
    assert retry_after(lim, "10.0.0.9") == "1"
    clock.now += 1.0
    assert admitted(lim, "10.0.0.9", 3) == 1


def test_a_refused_verification_takes_no_token_from_the_other_bucket() -> None:
    clock = Clock()
    lim = limiter(clock, per_client=Rate(0, 1), overall=Rate(0, 3))
    assert admitted(lim, "10.0.0.1", 5) == 1  # four refusals by the client bucket left the global one alone
    assert admitted(lim, "10.0.0.2", 1) == 1
    assert admitted(lim, "10.0.0.3", 1) == 1
    assert admitted(lim, "10.0.0.4", 1) == 0


def test_a_bucket_that_never_refills_says_so_in_a_bounded_retry_after() -> None:
    lim = limiter(Clock(), per_client=Rate(0, 1))
    lim.admit("10.0.0.1", None)
    assert retry_after(lim, "10.0.0.1") == "3600"


@pytest.mark.parametrize(("peer", "forwarded_for", "trusted", "client"), [
    ("10.0.0.1", None, (), "10.0.0.1"),
    ("10.0.0.1", "203.0.113.7", (), "10.0.0.1"),                        # not trusted: the header is ignored
    ("10.0.0.1", "203.0.113.7", ("10.0.0.0/8",), "203.0.113.7"),
    ("10.0.0.1", "198.51.100.1, 203.0.113.7, 10.0.0.2", ("10.0.0.0/8",), "203.0.113.7"),  # rightmost untrusted
    ("10.0.0.1", "10.0.0.3, 10.0.0.2", ("10.0.0.0/8",), "10.0.0.3"),    # all trusted: the leftmost
    ("192.0.2.1", "203.0.113.7", ("10.0.0.0/8",), "192.0.2.1"),         # a peer outside the trusted set
    ("2001:db8:1:2:3:4:5:6", None, (), "2001:db8:1:2::/64"),            # IPv6: one subscriber's /64
    (None, None, (), "unknown"),
    ("testclient", None, (), "testclient"),
])
def test_the_client_is_the_peer_unless_a_trusted_proxy_names_it(
    peer: str | None, forwarded_for: str | None, trusted: tuple[str, ...], client: str
) -> None:
    assert limiter(Clock(), trusted=trusted).client(peer, forwarded_for) == client


def test_x_forwarded_for_from_an_untrusted_peer_does_not_buy_a_new_bucket() -> None:
    lim = limiter(Clock(), per_client=Rate(0, 2))
    assert sum(admitted(lim, "10.0.0.1", 1, f"203.0.113.{i}") for i in range(10)) == 2


def test_ipv6_addresses_of_one_block_share_a_bucket() -> None:
    lim = limiter(Clock(), per_client=Rate(0, 2))
    assert sum(admitted(lim, f"2001:db8::{i:x}", 1) for i in range(10)) == 2
    assert admitted(lim, "2001:db8:0:1::1", 1) == 1


def test_the_client_table_is_bounded_and_forgets_the_least_recent_client() -> None:
    lim = limiter(Clock(), per_client=Rate(0, 1), max_clients=2)
    assert admitted(lim, "10.0.0.1", 1) == admitted(lim, "10.0.0.2", 1) == 1
    assert admitted(lim, "10.0.0.1", 1) == 0  # refused, and now the most recent client
    assert admitted(lim, "10.0.0.3", 1) == 1  # the table is full: 10.0.0.2 is forgotten
    assert admitted(lim, "10.0.0.1", 1) == 0  # remembered: still empty
    assert admitted(lim, "10.0.0.2", 1) == 1  # forgotten: a full bucket again (the global one still counts)
