"""The SSRF guard: every target reliability.md lists, refused by syntax or by address; pinning; allowlist."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from proxy.webhooks.ssrf import PINNED, Guard, HostsFile, PinnedResolver, Refused, parse_allowlist

PUBLIC = "93.184.215.14"


class Table:
    """A resolver seam: names to addresses, changeable between calls."""

    def __init__(self, names: dict[str, list[str]] | None = None) -> None:
        self.names = names or {}
        self.calls: list[str] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        if host not in self.names:
            raise OSError(f"{host}: name not known")
        return self.names[host]


# (url, reason): reliability.md's list of targets a guard must refuse, plus the ranges it names.
TARGETS = [
    ("http://127.0.0.1/hook", "non_global_address"),
    ("http://localhost/hook", "non_global_address"),
    ("http://LOCALHOST./hook", "non_global_address"),
    ("http://0.0.0.0/hook", "non_global_address"),
    ("http://[::1]/hook", "non_global_address"),
    ("http://[::ffff:127.0.0.1]/hook", "non_global_address"),
    ("http://169.254.169.254/latest/meta-data", "non_global_address"),
    ("http://[fd00:ec2::254]/hook", "non_global_address"),
    ("http://10.1.2.3/hook", "non_global_address"),
    ("http://172.16.0.1/hook", "non_global_address"),
    ("http://172.31.255.254/hook", "non_global_address"),
    ("http://192.168.1.1/hook", "non_global_address"),
    ("http://100.64.0.1/hook", "non_global_address"),
    ("http://224.0.0.1/hook", "non_global_address"),
    ("http://[ff02::1]/hook", "non_global_address"),
    ("http://2130706433/hook", "numeric_host"),
    ("http://0x7f000001/hook", "numeric_host"),
    ("http://127.1/hook", "numeric_host"),
    ("http://0177.0.0.1/hook", "numeric_host"),
    ("http://[64:ff9b::7f00:1]/hook", "non_global_address"),
    ("http://[2002:7f00:1::1]/hook", "non_global_address"),
    ("http://[::7f00:1]/hook", "non_global_address"),
    ("http://[64:ff9b:1::a00:1]/hook", "non_global_address"),
    ("http://user@example.com/hook", "userinfo"),
    ("http://user:pw@example.com/hook", "userinfo"),
    ("http://@example.com/hook", "userinfo"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://example.com:70/_hi", "scheme"),
    ("ftp://example.com/", "scheme"),
    ("http:example.com/hook", "scheme"),
    ("http://ex%41mple.com/", "invalid_url"),
    ("http://[fe80::1%25eth0]/", "non_global_address"),
]


@pytest.mark.parametrize(("url", "reason"), TARGETS)
async def test_every_listed_target_is_refused(url: str, reason: str) -> None:
    guard = Guard(Table({"localhost": ["127.0.0.1"], "example.com": [PUBLIC]}))
    with pytest.raises(Refused) as caught:
        await guard.check(url)
    assert caught.value.reason == reason


async def test_a_name_is_refused_if_any_of_its_addresses_is_not_global() -> None:
    guard = Guard(Table({"mixed.example": [PUBLIC, "10.0.0.7"], "ok.example": [PUBLIC, "2606:4700::1"]}))
    with pytest.raises(Refused, match=r"10\.0\.0\.7 \(private\)"):
        await guard.check("https://mixed.example/hook")
    target = await guard.check("https://ok.example/hook")
    assert await guard.addresses(target) == [PUBLIC, "2606:4700::1"]


async def test_a_name_that_rebinds_after_the_check_is_refused_at_send_time() -> None:
    table = Table({"hook.example": [PUBLIC]})
    guard = Guard(table)
    target = await guard.check("https://hook.example/in")  # subscription time: public
    table.names["hook.example"] = ["127.0.0.1"]
    with pytest.raises(Refused, match="loopback"):
        await guard.addresses(target)  # send time: asked again, refused


async def test_an_unresolvable_name_is_refused() -> None:
    with pytest.raises(Refused) as caught:
        await Guard(Table()).check("https://nowhere.example/")
    assert caught.value.reason == "unresolvable"


async def test_the_allowlist_admits_only_what_it_names() -> None:
    guard = Guard(Table({"localhost": ["127.0.0.1"]}), parse_allowlist("127.0.0.1/32, ::1/128"))
    await guard.check("http://127.0.0.1:8080/hook")
    await guard.check("http://[::1]:8080/hook")
    await guard.check("http://[::ffff:127.0.0.1]:8080/hook")  # the same address, mapped
    with pytest.raises(Refused):
        await guard.check("http://127.0.0.2/hook")
    with pytest.raises(Refused):
        await guard.check("http://169.254.169.254/")
    with pytest.raises(Refused):
        await guard.check("http://localhost/hook")  # names are refused by name, whatever they resolve to
    with pytest.raises(Refused, match="dotted-quad"):
        await guard.check("http://2130706433/hook")  # syntax is never allowlisted
    with pytest.raises(ValueError, match="not a network"):
        parse_allowlist("127.0.0.1/8")  # host bits set: a typo, not a range


async def test_the_hosts_file_answers_first_and_is_reread_when_it_changes(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(f"# test names\n{PUBLIC} hook.example.test other.test\n")
    fallback = Table({"elsewhere.test": [PUBLIC]})
    resolver = HostsFile(hosts, fallback)
    assert await resolver.resolve("HOOK.example.test.", 443) == [PUBLIC]
    assert await resolver.resolve("elsewhere.test", 443) == [PUBLIC]
    assert fallback.calls == ["elsewhere.test"]
    hosts.write_text("127.0.0.1 hook.example.test\n")
    import os
    os.utime(hosts, ns=(1, 10**18))  # a different mtime even within the filesystem's granularity
    assert await resolver.resolve("hook.example.test", 443) == ["127.0.0.1"]


async def test_the_client_resolver_answers_only_with_pinned_addresses() -> None:
    resolver = PinnedResolver()
    with pytest.raises(OSError, match="not checked"):
        await resolver.resolve("hook.example", 443)
    token = PINNED.set({("hook.example", 443): [PUBLIC]})
    try:
        [result] = await resolver.resolve("hook.example", 443)
    finally:
        PINNED.reset(token)
    assert (result["hostname"], result["host"], result["port"]) == ("hook.example", PUBLIC, 443)
    assert ipaddress.ip_address(result["host"]).is_global
