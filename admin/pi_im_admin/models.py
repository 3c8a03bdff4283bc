"""Request and response bodies of the REST API."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, Field

# The id of a row of the console's database in a path (an invitation, an operator, a token):
# bounded, so a number SQLite cannot hold is a 422, not a server error (found by the fuzzer).
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class NewUser(BaseModel):
    username: str = Field(max_length=1023, examples=["alice"])
    password: str = Field(max_length=1024)
    group: str = Field("", max_length=64, description="Shared roster group to add the user to")


class Password(BaseModel):
    password: str = Field(max_length=1024)


class Ban(BaseModel):
    reason: str = Field("", max_length=500)


class User(BaseModel):
    name: str
    online: bool
    banned: bool


class UserPage(BaseModel):
    users: list[User]
    total: int
    page: int
    pages: int
    query: str


class Session(BaseModel):
    resource: str
    ip: str
    connection: str
    uptime: int
    status: str


class UserDetail(BaseModel):
    name: str
    jid: str
    sessions: list[Session]
    banned: dict[str, str | float] | None


class Created(BaseModel):
    name: str


class Kicked(BaseModel):
    sessions: int


class NewGroup(BaseModel):
    name: str = Field(max_length=64, examples=["family"])
    label: str = Field("", max_length=100)
    description: str = Field("", max_length=500)


class Group(BaseModel):
    name: str
    label: str
    members: list[str]


class NewRoom(BaseModel):
    name: str = Field(max_length=64, examples=["kitchen"])
    title: str = Field("", max_length=100)


class Room(BaseModel):
    name: str
    members: list[str]


class NewInvite(BaseModel):
    hours: int = Field(72, ge=1, le=24 * 90)
    group: str = Field("", max_length=64)
    max_uses: int = Field(1, ge=1, le=1000)


class Invite(BaseModel):
    id: int
    created_by: str
    created_at: float
    expires_at: float
    group_name: str | None
    max_uses: int
    uses: int
    revoked: int
    active: bool


class CreatedInvite(BaseModel):
    id: int
    token: str
    url: str


class Broadcast(BaseModel):
    audience: Literal["all", "online"]
    subject: str = Field("", max_length=200)
    body: str = Field(min_length=1, max_length=10000)


class NewOperator(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)
    role: Literal["viewer", "operator", "admin", "owner"]


class RoleChange(BaseModel):
    role: Literal["viewer", "operator", "admin", "owner"]


class Operator(BaseModel):
    id: int
    username: str
    role: str
    created_at: float


class NewToken(BaseModel):
    name: str = Field(max_length=64)
    role: Literal["viewer", "operator", "admin", "owner"]
    days: int = Field(30, ge=1, le=365, description="Days until the token expires")


class Token(BaseModel):
    id: int
    name: str
    role: str
    created_by: str
    created_at: float
    expires_at: float
    last_used_at: float | None


class CreatedToken(BaseModel):
    id: int
    token: str


class NewWebhook(BaseModel):
    name: str = Field(max_length=64, examples=["archive"])
    url: str = Field(max_length=2048, examples=["https://hooks.example.org/pi-im"])
    events: list[str] = Field(
        max_length=16, description="Event types to deliver", examples=[["message.chat"]]
    )


class WebhookChange(BaseModel):
    url: str | None = Field(None, max_length=2048)
    events: list[str] | None = Field(None, max_length=16)
    paused: bool | None = Field(None, description="false resumes a paused webhook")


class Webhook(BaseModel):
    id: int
    name: str
    url: str
    events: list[str]
    created_by: str
    created_at: float
    paused: bool
    pause_reason: str
    failed_in_a_row: int


class WebhookSecret(BaseModel):
    id: int
    secret: str = Field(description="Shown this once: the receiver checks signatures with it")


class NewBot(BaseModel):
    name: str = Field(max_length=64, examples=["helpdesk"], description="The bot's account name")
    url: str = Field(
        max_length=2048,
        examples=["https://bots.example.org/helpdesk"],
        description="Where the bot's messages are delivered (a webhook, signed)",
    )


class Bot(BaseModel):
    name: str
    jid: str
    webhook_id: int | None
    url: str | None
    created_by: str
    created_at: float
    bound: bool = Field(description="Its messages reach its webhook (the dispatcher bound it)")
    last_used_at: float | None


class CreatedBot(BaseModel):
    name: str
    jid: str
    token: str = Field(description="Shown this once: the bot's replies use it (Bearer)")
    webhook_id: int
    webhook_secret: str = Field(description="Shown this once: the webhook's signing secret")


class BotMessage(BaseModel):
    to: str = Field(max_length=3071, examples=["ann@chat.example.org"])
    text: str = Field(max_length=10_000, examples=["Your ticket #42 is closed."])


class AssistantSettings(BaseModel):
    name: str | None = Field(
        None, max_length=64, description="Its account's name, when made (assistant by default)"
    )
    url: str = Field(
        max_length=2048,
        examples=["https://api.openai.com/v1"],
        description="An OpenAI-compatible API; its /chat/completions is asked",
    )
    model: str = Field(max_length=200, examples=["gpt-4o-mini"])
    prompt: str = Field("", max_length=2000, description="Instructions given with each question")
    per_hour: int = Field(20, ge=1, le=1000, description="Questions each person may ask an hour")
    turns: int = Field(10, ge=0, le=50, description="Exchanges remembered with each person")
    key: str | None = Field(
        None,
        max_length=4096,
        description="The service's API key: a new one; empty to forget it; left out to keep it",
    )


class Assistant(BaseModel):
    bot: str
    jid: str
    url: str
    model: str
    prompt: str
    per_hour: int
    turns: int
    key_set: bool = Field(description="A key is kept (never shown)")
    answering: bool = Field(description="Its questions reach the dispatcher (queue bound)")


class Delivery(BaseModel):
    event_id: str
    event_type: str
    first_at: float
    last_at: float
    status: Literal["delivered", "retrying", "failed"]
    attempts: int
    http_status: int | None
    error: str


class NewRule(BaseModel):
    kind: Literal["word", "pattern"] = Field(
        description="A word (whole, any case) or a pattern (a PCRE regular expression)"
    )
    text: str = Field(max_length=200, examples=["spamlink"])
    action: Literal["block", "mask"] = Field(
        description="block: not sent, the sender gets an error; mask: sent with it as ****"
    )


class NewWords(BaseModel):
    # Under the console's 64 KiB bound on a request's body.
    words: str = Field(max_length=60000, description="Words separated by spaces, commas or lines")
    action: Literal["block", "mask"]


class Rule(BaseModel):
    id: int
    kind: str
    text: str
    action: str
    created_by: str
    created_at: float


class ModerationList(BaseModel):
    keep_text: bool = Field(
        description="Whether records of blocked and masked messages keep the text"
    )
    rules: list[Rule]
    max_rules: int
    max_patterns: int


class KeepText(BaseModel):
    keep_text: bool


class RuleIds(BaseModel):
    ids: list[int]


class ModerationRecord(BaseModel):
    id: int
    at: float
    kind: Literal["blocked", "masked", "report"]
    sender: str = Field(description="Who sent the message, or who reported")
    target: str = Field(description="To whom it was sent, or who was reported")
    room: str | None
    rules: list[int] = Field(description="The rules it matched")
    reason: str = Field(description="A report's reason (urn:xmpp:reporting:spam, ...)")
    text: str | None = Field(description="What was said, only while the owner keeps it")


class AuditEntry(BaseModel):
    at: float
    actor: str
    action: str
    target: str
    detail: str


class ProcessStats(BaseModel):
    name: str
    pid: int | None
    rss_mb: float
    cpu_seconds: float


class Disk(BaseModel):
    """The file system holding the device's state with the least room (the card, on a Pi)."""

    total_gb: float
    free_gb: float
    free_mb: int = Field(description="What a service (not root) may still write, in MiB")
    used_percent: float
    state: Literal["ok", "low", "full"] = Field(
        description="low: below low_mb free; full: below full_mb, where RabbitMQ stops "
        "taking messages and ejabberd soon cannot save history, offline messages or rosters"
    )
    full_mb: int
    low_mb: int


class SharedFiles(BaseModel):
    """What members' shared files (XEP-0363) take on the card."""

    megabytes: float
    files: int


class Sample(BaseModel):
    at: float
    online: int
    registered: int


class Backup(BaseModel):
    """The last backup's outcome, as the device's pi-im-backup wrote it."""

    result: Literal["ok", "failed", "unset", "running"] = Field(
        description="ok; failed (see message); unset: no place for backups is set; running"
    )
    started: str = Field(description="When it began (ISO 8601, UTC)")
    finished: str | None = None
    repository: str = Field(description="Where backups go: a directory or sftp:user@host:/path")
    snapshot: str | None = None
    size: int | None = Field(default=None, description="Bytes of the device's state backed up")
    added: int | None = Field(default=None, description="Bytes new in this backup")
    message: str | None = Field(default=None, description="Why it failed, or why none is made")
    last_good: str | None = Field(default=None, description="When the last good one finished")


class Release(BaseModel):
    """Which release of the appliance converged the device last."""

    version: str = Field(
        description="The day of its commit and the commit (YYYY.MM.DD+abcdef0), '+changed' "
        "when it came from a working tree with changes not committed"
    )
    commit: str = Field(description="The full commit, when known")
    date: str = Field(description="The day of the commit (YYYY-MM-DD), when known")


class ApplianceUpdate(BaseModel):
    """The last newer release the device applied to itself (pi-im-update)."""

    result: Literal["ok", "failed", "running"] = Field(
        description="ok; failed (see step and message; back says whether all was put back)"
    )
    to: str = Field(description="The release applied")
    from_: str = Field(alias="from", description="The release the device ran before")
    started: str
    finished: str | None = None
    step: str | None = Field(default=None, description="run: the playbooks; verify: the services")
    message: str | None = None
    back: bool | None = Field(default=None, description="Whether everything was put back as it was")


class BackupStarted(BaseModel):
    message: str


class Updates(BaseModel):
    """The last nightly run of Debian's updates (unattended-upgrades), as the device recorded it."""

    result: Literal["installed", "nothing", "failed", "unfinished", "not yet"] = Field(
        description="installed; nothing to install; failed (see errors); unfinished; not yet run"
    )
    ran: str | None = Field(default=None, description="When it started (local time, ISO 8601)")
    packages: list[str] = Field(default_factory=list, description="What it installed, or tried to")
    errors: list[str] = Field(default_factory=list, description="Why it failed, first lines")
    unattended: bool = Field(default=True, description="Whether updates are installed unattended")
    reboot_pending: bool = Field(default=False, description="Whether an update waits for a reboot")
    reboot_at: str | None = Field(default=None, description="When that reboot is made (HH:MM)")


class PackageChange(BaseModel):
    to: str
    # "from" is a keyword in Python.
    before: str = Field(alias="from", description="The installed version; '-' when none")


class EjabberdUpdate(BaseModel):
    """The last check of an ejabberd or Erlang update before it was installed."""

    result: Literal["passed", "refused"]
    checked: str = Field(description="When (ISO 8601, the device's time)")
    installed: str = Field(description="The ejabberd version installed when it was checked")
    packages: dict[str, PackageChange]
    reason: str | None = Field(default=None, description="Why it was refused")


class EventBus(BaseModel):
    """How the server's events reach RabbitMQ (docs/events.md), since ejabberd started."""

    connected: bool
    buffered: int = Field(description="Events waiting for RabbitMQ to confirm them")
    in_flight: int = Field(description="Of those, sent and not yet confirmed")
    confirmed: int
    dropped: int = Field(description="Events dropped while the buffer was full")
    last_error: str = Field(description="Why RabbitMQ was last unreachable; empty when it is not")


class PausedWebhook(BaseModel):
    id: int
    name: str
    reason: str


class Dashboard(BaseModel):
    domain: str = Field(description="The XMPP domain: addresses are name@domain")
    registered: int
    online: int
    uptime_seconds: int
    processes: list[ProcessStats]
    disk: Disk
    history: list[Sample]
    federation: bool = Field(description="Whether users can reach other XMPP servers")
    shared_files: SharedFiles | None = Field(description="None when file sharing is off")
    backup: Backup | None = Field(description="None when the device has made none")
    release: Release | None = Field(default=None, description="None when none is recorded")
    appliance_update: ApplianceUpdate | None = Field(
        default=None, description="None until the device applied a release to itself"
    )
    updates: Updates | None = Field(default=None, description="None before the first record")
    ejabberd_update: EjabberdUpdate | None = Field(
        default=None, description="None until an ejabberd or Erlang update came"
    )
    event_bus: EventBus | None = Field(
        default=None, description="None when the device publishes no events"
    )
    paused_webhooks: list[PausedWebhook] = Field(
        default=[], description="Webhooks that get no events until an admin resumes them"
    )
    spam_reports: int = Field(
        default=0, description="Spam reports from users in the last 7 days (Moderation page)"
    )


class Finding(BaseModel):
    key: str = Field(description="What was checked: name, address, xmpp-client, certificate, ...")
    state: Literal["ok", "todo", "note"]
    title: str
    found: str
    todo: str = Field(description="What the owner still has to do; empty when nothing")


class Forward(BaseModel):
    protocol: Literal["TCP", "UDP"]
    ports: str
    purpose: str


class Reachability(BaseModel):
    domain: str
    public_name: bool = Field(description="Whether the domain can be a name in public DNS")
    lan_address: str = Field(description="Where the router forwards to")
    checked_at: float
    findings: list[Finding]
    forwards: list[Forward] = Field(description="The port forwards to set on the router")


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    ejabberd: bool


class Error(BaseModel):
    detail: str
