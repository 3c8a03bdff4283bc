"""Disk full on the data file system. The device's state (ejabberd's, RabbitMQ's and the
console's) is moved onto a file system of its own, as on a card that holds nothing else, and
that file system is filled, first to nearly full, then to the last byte. With real clients:
messages between people who are online still arrive; what cannot be saved is refused with an
error the sender sees (a message to someone away, a roster change) or waits in memory (the
archive copies of delivered messages); RabbitMQ raises its disk alarm; the console says so to
whoever signs in and refuses its own writes with a 507. Once there is room again everything
recovers by itself: the waiting history is written in order, nothing is corrupted, no service
was restarted."""

from __future__ import annotations

import asyncio
import secrets
import ssl
from collections.abc import Iterator

import httpx
import pytest
import slixmpp
from slixmpp.exceptions import IqError

import family
from admin_console import Console
from conftest import DOMAIN, Account, api, create_user, secret

# Run by the operations scenario, on a device of its own (molecule/operations).
pytestmark = pytest.mark.operations

# Above RabbitMQ's 512 MiB disk limit and the console's 2 GiB warning: the device starts with
# room. tmpfs takes memory only for what is written (the filler, for the test's length).
SIZE = "2304m"
MOUNT = "/srv/pi-im-test-state"
STATE = ["/var/lib/ejabberd", "/var/lib/rabbitmq", "/var/lib/pi-im-admin"]
SERVICES = ["rabbitmq-server", "ejabberd", "pi-im-admin"]
FILLER = f"{MOUNT}/filler"
SENT_WHILE_FULL = 20


def services_up(host, address: str, tls: ssl.SSLContext) -> None:  # type: ignore[no-untyped-def]
    """Each service started and answering (a start takes longer on a busy machine)."""
    for unit in SERVICES:
        family.seconds_until(
            lambda unit=unit: host.run(f"systemctl is-active {unit}").stdout.strip() == "active",
            90,
        )
    family.seconds_until(lambda: host.run("ejabberdctl status").rc == 0, 90)
    family.seconds_until(lambda: family.console_answers(address, tls), 90)


@pytest.fixture(scope="module")
def small_card(host, address: str, device_tls: ssl.SSLContext) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The device's state on a file system of its own, as on a card; put back on the
    container's own file system afterwards, with whatever the tests changed in it."""
    stop = f"systemctl stop {' '.join(reversed(SERVICES))}"
    start = f"systemctl start {' '.join(SERVICES)}"
    move = "; ".join(
        f"cp -a {path} {MOUNT}/ && mount --bind {MOUNT}/{path.rsplit('/', 1)[1]} {path}"
        for path in STATE
    )
    host.check_output(
        f"{stop} && mkdir -p {MOUNT} && mount -t tmpfs -o size={SIZE},mode=0755 pi-im-state "
        f"{MOUNT} && {{ {move}; }} && {start}"
    )
    services_up(host, address, device_tls)
    yield
    back = "; ".join(
        f"umount {path} && find {path} -mindepth 1 -delete && "
        f"cp -a {MOUNT}/{path.rsplit('/', 1)[1]}/. {path}/"
        for path in STATE
    )
    host.check_output(f"rm -f {FILLER}; {stop} && {{ {back}; }} && umount {MOUNT} && {start}")
    services_up(host, address, device_tls)


def free_bytes(host) -> int:  # type: ignore[no-untyped-def]
    return int(host.check_output(f"df --output=avail -B1 {MOUNT} | tail -n 1"))


def fill_to(host, left_mb: int) -> None:  # type: ignore[no-untyped-def]
    """Grow the filler (root's, as a runaway log or a large copy would be) until only
    `left_mb` is free."""
    for _ in range(5):  # the services write and free space meanwhile
        if left_mb:
            size = int(host.run(f"stat -c %s {FILLER}").stdout or 0)
            host.check_output(f"fallocate -l {size + free_bytes(host) - left_mb * 2**20} {FILLER}")
        else:
            # To the last page: an fallocate of exactly what is free can be refused (a
            # service wrote meanwhile), so write until the file system says no room.
            host.run(f"dd if=/dev/zero of={FILLER} bs=64k oflag=append conv=notrunc status=none")
        if free_bytes(host) <= left_mb * 2**20:
            return
    raise AssertionError(f"more than {left_mb} MB still free: {free_bytes(host)} bytes")


@pytest.fixture(scope="module")
def members(host, small_card: None, owner_api: httpx.Client) -> Iterator[list[Account]]:  # type: ignore[no-untyped-def]
    """Three members made while there is room: two who chat, one who is away."""
    made = [create_user(owner_api) for _ in range(3)]
    yield made
    for account in made:
        api(host, "unregister", {"user": account.jid.split("@")[0], "host": DOMAIN})


def local(account: Account) -> str:
    return account.jid.split("@")[0]


def dashboard(owner_api: httpx.Client) -> dict[str, object]:
    response = owner_api.get("/dashboard")
    assert response.status_code == 200, response.text
    return response.json()["disk"]  # type: ignore[no-any-return]


def broker_alarm(host) -> bool:  # type: ignore[no-untyped-def]
    """RabbitMQ's disk alarm: "disk space" (RabbitMQ 4), "disk" (3.x)."""
    alarms = family.broker_alarms(host, secret(host, "rabbitmq-admin-password"))
    return any(resource.startswith("disk") for resource in alarms)


def main_pids(host) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {
        unit: host.check_output(f"systemctl show --value -p MainPID {unit}") for unit in SERVICES
    }


@pytest.fixture(scope="module")
def pids(host, small_card: None) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return main_pids(host)


class Outcome:
    """What the members saw while the disk was full."""

    chat: list[str]
    received: list[str]
    away_text: str
    away_refused: bool
    roster_refused: bool


SEEN = Outcome()


def test_nearly_full_the_console_warns(  # type: ignore[no-untyped-def]
    host, members: list[Account], owner: Console, owner_api: httpx.Client
) -> None:
    fill_to(host, 1024)
    disk = dashboard(owner_api)
    assert disk["state"] == "low", disk
    assert 900 < disk["free_mb"] <= 1024  # type: ignore[operator]
    page = owner.get("/").text
    assert 'id="storage"' in page
    assert "storage is nearly full" in page
    assert not broker_alarm(host)


def test_full_online_messages_arrive_and_what_cannot_be_saved_is_refused(
    host,
    members: list[Account],
    pids: dict[str, str],
    address: str,
    device_tls: ssl.SSLContext,
) -> None:  # type: ignore[no-untyped-def]
    alice, bob, carol = members

    async def chat() -> None:
        sender = await family.online(local(alice), alice.password, device_tls, address)
        receiver = await family.online(local(bob), bob.password, device_tls, address)
        # The disk fills while they are online. (A login meanwhile can be dropped: a refused
        # transaction, such as the first sight of a client's capabilities, takes ejabberd's
        # one SQL connection down with whatever query waited on it; apps log in again.)
        await asyncio.to_thread(fill_to, host, 0)
        assert free_bytes(host) == 0
        refused: list[slixmpp.Message] = []
        sender.add_event_handler("message_error", refused.append)
        SEEN.chat, SEEN.received = [], []
        for n in range(SENT_WHILE_FULL):
            text = f"while the disk is full {n} {secrets.token_hex(2)}"
            sender.send_message(mto=bob.jid, mbody=text, mtype="chat")
            SEEN.chat.append(text)
            SEEN.received.append((await asyncio.wait_for(receiver.messages.get(), 15))["body"])
        SEEN.away_text = f"for when you are back {secrets.token_hex(2)}"
        sender.send_message(mto=carol.jid, mbody=SEEN.away_text, mtype="chat")
        await asyncio.sleep(5)
        SEEN.away_refused = any(m["body"] == SEEN.away_text for m in refused)
        if SEEN.away_refused:
            error = next(m for m in refused if m["body"] == SEEN.away_text)["error"]
            assert error["type"] == "wait", error
        refusal = None
        try:
            await sender.update_roster(carol.jid, name="Carol while full")
        except IqError as error:
            refusal = error.iq["error"]
        SEEN.roster_refused = refusal is not None
        assert refusal is None or refusal["type"] == "wait", refusal
        for client in (sender, receiver):
            client.disconnect()
            await client.disconnected

    asyncio.run(chat())
    print(
        f"full: {len(SEEN.received)}/{SENT_WHILE_FULL} delivered; message to the away member "
        f"{'refused' if SEEN.away_refused else 'stored'}; roster change "
        f"{'refused' if SEEN.roster_refused else 'saved'}"
    )
    assert SEEN.received == SEEN.chat
    assert main_pids(host) == pids
    assert host.check_output("systemctl --failed --no-legend --plain") == ""


def test_full_the_broker_raises_its_alarm_and_the_console_says_so(
    host, members: list[Account], owner: Console, owner_api: httpx.Client
) -> None:  # type: ignore[no-untyped-def]
    family.seconds_until(lambda: broker_alarm(host), 30)
    disk = dashboard(owner_api)
    assert disk["state"] == "full", disk
    assert disk["free_mb"] == 0
    page = owner.get("/").text
    assert 'role="alert" id="storage"' in page
    assert "storage is full" in page
    # A change in the console either fits or is refused as full, with what to do; never a 500.
    response = owner_api.post("/invites", json={"hours": 1})
    assert response.status_code in (201, 507), response.text
    if response.status_code == 507:
        assert "storage is full" in response.json()["detail"]
    print(f"full: an invitation made in the console was {response.status_code}")


def test_room_again_everything_recovers_and_the_history_is_complete(
    host,
    members: list[Account],
    pids: dict[str, str],
    owner_api: httpx.Client,
    address: str,
    device_tls: ssl.SSLContext,
) -> None:  # type: ignore[no-untyped-def]
    alice, bob, carol = members
    host.check_output(f"rm {FILLER}")
    family.seconds_until(lambda: not broker_alarm(host), 60)
    assert dashboard(owner_api)["state"] == "ok"

    async def check() -> None:
        receiver = await family.online(local(bob), bob.password, device_tls, address)

        async def complete() -> bool:
            return await receiver.history(with_jid=alice.jid) == SEEN.chat

        # The archive copies held in memory are written at the next try (every 5 s).
        for _ in range(60):
            if await complete():
                break
            await asyncio.sleep(1)
        assert await receiver.history(with_jid=alice.jid) == SEEN.chat
        away = await family.online(local(carol), carol.password, device_tls, address)
        sender = await family.online(local(alice), alice.password, device_tls, address)
        if not SEEN.away_refused:
            waiting = await asyncio.wait_for(away.messages.get(), 15)
            assert waiting["body"] == SEEN.away_text
        # Everything that was refused works again.
        await sender.update_roster(carol.jid, name="Carol with room")
        assert sender.client_roster[carol.jid]["name"] == "Carol with room"
        text = f"with room again {secrets.token_hex(2)}"
        sender.send_message(mto=carol.jid, mbody=text, mtype="chat")
        assert (await asyncio.wait_for(away.messages.get(), 15))["body"] == text
        for client in (receiver, away, sender):
            client.disconnect()
            await client.disconnected

    asyncio.run(check())
    assert owner_api.post("/invites", json={"hours": 1}).status_code == 201
    assert set(family.integrity(host).values()) == {"ok"}
    assert main_pids(host) == pids
    assert host.check_output("systemctl --failed --no-legend --plain") == ""
    written = host.check_output(
        "journalctl -u ejabberd --no-pager -o cat | grep 'The disk has room again' | tail -n 1"
    )
    assert ", 0 dropped" in written, written
