"""Mail: outbox rows queued in the caller's transaction, delivery through the real queue dispatch with the
outbox and the real SendGrid SDK (against a local stand-in), templates, and the local-only dev outbox."""

from __future__ import annotations

import secrets
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

import shared.mail.jobs  # noqa: F401 - registers the "mail.deliver" handler
from shared.infra.loop_local import reset_all
from shared.infra.queue.postgres import PostgresQueue
from shared.infra.queue.worker import Outcome, dispatch
from shared.mail import service, templates
from shared.mail.backends import OutboxMailer, SendGridMailer, get_mailer
from shared.settings import get_settings
from tests.support.sendgrid_server import SendGridServer

Db = psycopg.AsyncConnection[Any]
MAIL_FROM = "Cinema Online <no-reply@cinema.test>"


def address() -> str:
    return f"viewer-{secrets.token_hex(4)}@example.test"


async def queue_committed(pool: AsyncConnectionPool, **kwargs: Any) -> uuid.UUID:
    """queue_mail in a transaction that commits, as a request's would."""
    async with pool.connection() as conn:  # commits when the block ends without error
        return await service.queue_mail(conn, **kwargs)


async def verify_mail(pool: AsyncConnectionPool, to: str | None = None) -> uuid.UUID:
    return await queue_committed(
        pool,
        to=to or address(),
        template="verify_email",
        data={"link": f"http://localhost:3000/verify-email?token={secrets.token_urlsafe(16)}"},
    )


async def mail_row(db: Db, mail_id: uuid.UUID) -> dict[str, Any] | None:
    async with db.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        await cursor.execute("select * from public.mail_outbox where id = %s", (mail_id,))
        return await cursor.fetchone()


async def job_row(db: Db, mail_id: uuid.UUID) -> dict[str, Any] | None:
    async with db.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        await cursor.execute(
            "select queue, kind, payload, priority, state, attempts, max_attempts, last_error"
            " from public.job_queue where dedup_key = %s",
            (f"mail:{mail_id}",),
        )
        return await cursor.fetchone()


@pytest.fixture
def queue(pool: AsyncConnectionPool) -> PostgresQueue:
    # A queue of its own, so jobs other tests leave in "default" are never picked up here.
    return PostgresQueue(pool, queue=f"test-mail-{uuid.uuid4().hex[:8]}", backoff_base_seconds=60)


async def deliver(db: Db, queue: PostgresQueue, mail_id: uuid.UUID) -> Outcome:
    """Move the mail's job onto the test queue, make it due, take it and run it through dispatch."""
    await db.execute(
        "update public.job_queue set queue = %s, run_at = now() where dedup_key = %s",
        (queue.queue, f"mail:{mail_id}"),
    )
    [job] = await queue.receive()
    assert job.kind == "mail.deliver"
    return await dispatch(queue, job)


@pytest.fixture(scope="module")
def sendgrid_server() -> Iterator[SendGridServer]:
    with SendGridServer() as server:
        yield server


@pytest.fixture
async def sendgrid(
    sendgrid_server: SendGridServer, settings_env: Callable[..., None]
) -> AsyncIterator[SendGridServer]:
    sendgrid_server.reset()
    settings_env(
        MAIL_BACKEND="sendgrid",
        SENDGRID_API_KEY=sendgrid_server.api_key,
        SENDGRID_HOST=sendgrid_server.url,
        MAIL_FROM=MAIL_FROM,
    )
    await reset_all()
    yield sendgrid_server
    await reset_all()


# --- queueing in the caller's transaction ---------------------------------------------------------------


async def test_a_rolled_back_transaction_sends_nothing(database_url: str, db: Db) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, prepare_threshold=None) as conn:
        mail_id = await service.queue_mail(
            conn, to=address(), template="reset_password", data={"link": "http://localhost:3000/r?t=1"}
        )
        assert await mail_row(conn, mail_id) is not None  # visible inside the transaction
        await conn.rollback()
    assert await mail_row(db, mail_id) is None
    assert await job_row(db, mail_id) is None


async def test_a_committed_transaction_stores_the_message_and_queues_its_delivery(
    pool: AsyncConnectionPool, db: Db
) -> None:
    to = address()
    link = "http://localhost:3000/verify-email?token=abc"
    mail_id = await queue_committed(pool, to=to, template="verify_email", data={"link": link})
    row = await mail_row(db, mail_id)
    assert row is not None
    assert (row["to_address"], row["template"]) == (to, "verify_email")
    assert (row["state"], row["attempts"]) == ("queued", 0)
    assert row["subject"] == "Confirm your email for Cinema Online"
    assert link in row["text_body"] and "24 hours" in row["text_body"]  # EMAIL_TOKEN_TTL_MINUTES=1440
    assert 'href="http://localhost:3000/verify-email?token=abc"' in row["html_body"]
    assert row["user_id"] is None and row["sent_at"] is None
    job = await job_row(db, mail_id)
    assert job is not None
    assert (job["queue"], job["kind"], job["payload"], job["state"]) == (
        "default",
        "mail.deliver",
        {"id": str(mail_id)},
        "queued",
    )
    assert job["priority"] > 0  # ahead of media jobs: someone is waiting for this link
    assert job["max_attempts"] == get_settings().queue_max_attempts


async def test_the_message_belongs_to_its_user(pool: AsyncConnectionPool, db: Db) -> None:
    to = address()
    cursor = await db.execute("insert into public.users (email) values (%s) returning id", (to,))
    row = await cursor.fetchone()
    assert row is not None
    user_id = row[0]
    mail_id = await queue_committed(pool, to=to, template="mfa_enabled", data={}, user_id=user_id)
    stored = await mail_row(db, mail_id)
    assert stored is not None and stored["user_id"] == user_id


async def test_programming_errors_raise_before_anything_is_written(database_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(database_url, prepare_threshold=None) as conn:
        with pytest.raises(ValueError, match="unknown mail template"):
            await service.queue_mail(conn, to=address(), template="no_such_mail", data={})
        with pytest.raises(ValueError, match=r"needs data\['link'\]"):
            await service.queue_mail(conn, to=address(), template="verify_email", data={})
        with pytest.raises(ValueError, match="absolute http"):
            await service.queue_mail(
                conn, to=address(), template="verify_email", data={"link": "javascript:alert(1)"}
            )
        with pytest.raises(ValueError, match="usable email address"):
            await service.queue_mail(conn, to="a@b.test\r\nBcc: x@y.test", template="mfa_enabled", data={})
        await conn.rollback()


# --- templates --------------------------------------------------------------------------------------------

SAMPLE: dict[str, str] = {
    "link": "https://cinema.example/confirm?token=T0K&x=1",
    "login_link": "https://cinema.example/login",
    "reset_link": "https://cinema.example/reset?token=R3S",
    "new_email": "new@example.test",
    "device": "Firefox on Linux",
    "ip": "203.0.113.7",
    "time": "2026-11-21 18:04 UTC",
    "provider": "Google",
    "site_url": "https://cinema.example/",
    "email_link_lifetime": "24 hours",
    "reset_link_lifetime": "30 minutes",
    # The receipt's (shared.invoices.receipt.receipt_data): lines and totals travel as JSON pairs.
    "number": "CIN-00000042",
    "date": "21 November 2026",
    "amount_paid": "$12.99",
    "lines": '[["Standard (monthly)", "$12.99"]]',
    "totals": '[["Subtotal", "$12.99"], ["Total", "$12.99"], ["Amount paid", "$12.99"]]',
    "link_lifetime": "30 days",
}


@pytest.mark.parametrize("name", sorted(templates.TEMPLATES))
def test_every_template_renders_text_and_html(name: str) -> None:
    mail = templates.render(name, SAMPLE)
    assert mail.subject and "\n" not in mail.subject and len(mail.subject) < 80
    assert "Cinema Online" in mail.text and "Cinema Online" in mail.html
    assert mail.html.startswith("<!doctype html>") and mail.html.endswith("</html>")
    # Every link of the text body is a button in the HTML, escaped for the attribute.
    for link in service.extract_links(mail.text):
        assert f'href="{link.replace("&", "&amp;")}"' in mail.html


def test_the_required_templates_exist() -> None:
    assert set(templates.TEMPLATES) >= {
        "verify_email",
        "already_registered",
        "reset_password",
        "password_changed",
        "email_change_verify",
        "email_change_notice",
        "new_device",
        "mfa_enabled",
        "mfa_disabled",
        "backup_codes_regenerated",
        "account_locked",
        "account_deleted",
        "identity_linked",
    }


def test_security_notices_tell_the_owner_what_to_do() -> None:
    for name in ("password_changed", "new_device", "mfa_disabled", "email_change_notice"):
        with_reset = templates.render(name, SAMPLE)
        assert "If this wasn't you, reset your password" in with_reset.text
        assert SAMPLE["reset_link"] in with_reset.text
        # Without a reset link the notice still says what to do and links the site (from settings).
        without = templates.render(name, {k: v for k, v in SAMPLE.items() if k != "reset_link"})
        assert "If this wasn't you, reset your password" in without.text
        assert service.extract_links(without.text) == ["https://cinema.example/"]


def test_values_are_escaped_in_html_and_kept_in_text() -> None:
    hostile = '<script>alert("x")</script>&<b>'
    mail = templates.render("new_device", {**SAMPLE, "device": hostile, "ip": "<img src=x onerror=alert(1)>"})
    assert "<script>" not in mail.html and "<img" not in mail.html and "<b>" not in mail.html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&lt;b&gt;" in mail.html
    assert "&lt;img src=x onerror=alert(1)&gt;" in mail.html
    assert hostile in mail.text  # plain text is not HTML: shown as typed
    link = templates.render("verify_email", {**SAMPLE, "link": "https://cinema.example/v?a=1&b=2"})
    assert 'href="https://cinema.example/v?a=1&amp;b=2"' in link.html


def test_values_cannot_break_the_subject_line() -> None:
    mail = templates.render("email_change_verify", {**SAMPLE, "new_email": "x@y.test"})
    assert mail.subject == "Confirm your new email address"
    hostile = "Evil\r\nBcc: victim@example.test " + "A" * 300
    device = templates.render("new_device", {**SAMPLE, "device": hostile})
    assert "\r" not in device.text.split("Device: ")[1].split("\n")[0]
    assert "Bcc: victim@example.test" in device.text  # kept, but as part of one short line
    assert len(device.text.split("Device: ")[1].split("\n")[0]) <= 120


def test_links_are_extracted_from_text() -> None:
    text = "Confirm:\nhttps://a.test/v?t=1&x=2.\nSee (http://b.test/path), not ftp://c.test or www.d.test"
    assert service.extract_links(text) == ["https://a.test/v?t=1&x=2", "http://b.test/path"]


# --- delivery: outbox backend ---------------------------------------------------------------------------


async def test_outbox_delivery_through_the_queue_marks_the_message_sent(
    pool: AsyncConnectionPool, db: Db, queue: PostgresQueue
) -> None:
    assert isinstance(get_mailer(get_settings()), OutboxMailer)  # the local default
    mail_id = await verify_mail(pool)
    assert await deliver(db, queue, mail_id) is Outcome.DONE
    row = await mail_row(db, mail_id)
    assert row is not None
    assert (row["state"], row["provider_message_id"], row["attempts"]) == ("sent", f"outbox:{mail_id}", 1)
    assert row["sent_at"] is not None and row["last_error"] is None
    job = await job_row(db, mail_id)
    assert job is not None and job["state"] == "done"


async def test_a_job_for_a_deleted_message_finishes_quietly(db: Db, queue: PostgresQueue) -> None:
    await queue.enqueue("mail.deliver", {"id": str(uuid.uuid4())})
    [job] = await queue.receive()
    assert await dispatch(queue, job) is Outcome.DONE


async def test_a_job_without_a_message_id_is_dead_at_once(queue: PostgresQueue) -> None:
    await queue.enqueue("mail.deliver", {"id": "not-a-uuid"})
    [job] = await queue.receive()
    assert await dispatch(queue, job) is Outcome.DEAD


# --- delivery: SendGrid through its SDK -----------------------------------------------------------------


async def test_sendgrid_receives_the_message_from_the_sdk(
    pool: AsyncConnectionPool, db: Db, queue: PostgresQueue, sendgrid: SendGridServer
) -> None:
    assert isinstance(get_mailer(get_settings()), SendGridMailer)
    to = address()
    mail_id = await queue_committed(
        pool,
        to=to,
        template="reset_password",
        data={"link": "http://localhost:3000/reset-password?token=xyz"},
    )
    assert await deliver(db, queue, mail_id) is Outcome.DONE
    [request] = sendgrid.received
    assert (request.method, request.path, request.status) == ("POST", "/v3/mail/send", 202)
    assert request.headers["authorization"] == f"Bearer {sendgrid.api_key}"
    assert request.headers["user-agent"].startswith("sendgrid/")
    row = await mail_row(db, mail_id)
    assert row is not None
    body = request.body
    assert body["from"] == {"name": "Cinema Online", "email": "no-reply@cinema.test"}
    assert body["personalizations"] == [{"to": [{"email": to}]}]
    assert body["subject"] == row["subject"] == "Reset your Cinema Online password"
    assert body["content"] == [
        {"type": "text/plain", "value": row["text_body"]},
        {"type": "text/html", "value": row["html_body"]},
    ]
    assert "http://localhost:3000/reset-password?token=xyz" in body["content"][0]["value"]
    assert body["categories"] == ["reset_password"]
    assert body["custom_args"] == {"template": "reset_password", "mail_id": str(mail_id)}
    assert (row["state"], row["provider_message_id"], row["attempts"]) == ("sent", request.message_id, 1)


async def test_a_server_error_is_retried_and_the_attempt_recorded(
    pool: AsyncConnectionPool, db: Db, queue: PostgresQueue, sendgrid: SendGridServer
) -> None:
    mail_id = await verify_mail(pool)
    sendgrid.fail_next(500, message="internal error")
    assert await deliver(db, queue, mail_id) is Outcome.RETRY
    row = await mail_row(db, mail_id)
    assert row is not None
    assert (row["state"], row["attempts"]) == ("queued", 1)
    assert "SendGrid answered 500: internal error" in row["last_error"]
    job = await job_row(db, mail_id)
    assert job is not None and (job["state"], job["attempts"]) == ("queued", 1)
    assert "MailDeliveryError" in job["last_error"]
    # The retry (made due now rather than after its backoff) goes through.
    assert await deliver(db, queue, mail_id) is Outcome.DONE
    row = await mail_row(db, mail_id)
    assert row is not None
    assert (row["state"], row["attempts"], row["last_error"]) == ("sent", 2, None)
    assert [r.status for r in sendgrid.received] == [500, 202]


async def test_rate_limiting_is_transient(
    pool: AsyncConnectionPool, db: Db, queue: PostgresQueue, sendgrid: SendGridServer
) -> None:
    mail_id = await verify_mail(pool)
    sendgrid.fail_next(429, message="too many requests")
    assert await deliver(db, queue, mail_id) is Outcome.RETRY
    row = await mail_row(db, mail_id)
    assert row is not None and row["state"] == "queued" and "429" in row["last_error"]


async def test_a_refused_message_is_dead_at_once_and_marked_failed(
    pool: AsyncConnectionPool, db: Db, queue: PostgresQueue, sendgrid: SendGridServer
) -> None:
    mail_id = await verify_mail(pool)
    sendgrid.fail_next(400, message="The from address does not match a verified Sender Identity.")
    assert await deliver(db, queue, mail_id) is Outcome.DEAD
    row = await mail_row(db, mail_id)
    assert row is not None
    assert (row["state"], row["attempts"]) == ("failed", 1)
    assert "SendGrid answered 400: The from address does not match" in row["last_error"]
    job = await job_row(db, mail_id)
    assert job is not None and job["state"] == "dead" and "PermanentJobError" in job["last_error"]


async def test_a_wrong_api_key_is_permanent(
    pool: AsyncConnectionPool,
    db: Db,
    queue: PostgresQueue,
    sendgrid: SendGridServer,
    settings_env: Callable[..., None],
) -> None:
    settings_env(SENDGRID_API_KEY="SG.wrong.key")
    mail_id = await verify_mail(pool)
    assert await deliver(db, queue, mail_id) is Outcome.DEAD
    assert [r.status for r in sendgrid.received] == [401]
    row = await mail_row(db, mail_id)
    assert row is not None and row["state"] == "failed" and "401" in row["last_error"]


async def test_the_last_attempt_marks_the_message_failed(
    pool: AsyncConnectionPool,
    db: Db,
    queue: PostgresQueue,
    sendgrid: SendGridServer,
    settings_env: Callable[..., None],
) -> None:
    settings_env(QUEUE_MAX_ATTEMPTS="2")
    mail_id = await verify_mail(pool)
    sendgrid.fail_next(503, times=2)
    assert await deliver(db, queue, mail_id) is Outcome.RETRY
    row = await mail_row(db, mail_id)
    assert row is not None and (row["state"], row["attempts"]) == ("queued", 1)
    assert await deliver(db, queue, mail_id) is Outcome.DEAD  # out of attempts: the queue buries it
    row = await mail_row(db, mail_id)
    assert row is not None and (row["state"], row["attempts"]) == ("failed", 2)
    job = await job_row(db, mail_id)
    assert job is not None and (job["state"], job["attempts"]) == ("dead", 2)


async def test_an_unreachable_provider_is_transient(
    pool: AsyncConnectionPool,
    db: Db,
    queue: PostgresQueue,
    sendgrid: SendGridServer,
    settings_env: Callable[..., None],
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings_env(SENDGRID_HOST=f"http://127.0.0.1:{port}")
    mail_id = await verify_mail(pool)
    assert await deliver(db, queue, mail_id) is Outcome.RETRY
    row = await mail_row(db, mail_id)
    assert row is not None and row["state"] == "queued" and "SendGrid unreachable" in row["last_error"]


async def test_a_redelivered_job_does_not_send_twice(
    pool: AsyncConnectionPool, db: Db, queue: PostgresQueue, sendgrid: SendGridServer
) -> None:
    mail_id = await verify_mail(pool)
    assert await deliver(db, queue, mail_id) is Outcome.DONE
    sent = await mail_row(db, mail_id)
    # The same job delivered again (a lost lease, an SQS duplicate): acknowledged, nothing sent.
    await db.execute(
        "update public.job_queue set state = 'queued' where dedup_key = %s", (f"mail:{mail_id}",)
    )
    assert await deliver(db, queue, mail_id) is Outcome.DONE
    assert len(sendgrid.accepted()) == 1
    assert await mail_row(db, mail_id) == sent


# --- the dev outbox over HTTP ---------------------------------------------------------------------------


@pytest.fixture
async def dev_client() -> AsyncIterator[httpx.AsyncClient]:
    from api.dev import app

    await reset_all()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client
    await reset_all()


async def test_the_outbox_lists_messages_with_their_links(
    pool: AsyncConnectionPool, dev_client: httpx.AsyncClient
) -> None:
    to = address()
    first = await verify_mail(pool, to)
    second = await queue_committed(
        pool,
        to=to,
        template="already_registered",
        data={"login_link": "http://localhost:3000/login", "reset_link": "http://localhost:3000/reset?t=9"},
    )
    await verify_mail(pool)  # someone else's
    response = await dev_client.get("/api/v1/dev/outbox", params={"to": to.upper()})
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["id"] for item in items] == [str(second), str(first)]  # newest first, only this address
    newest = items[0]
    assert newest["to"] == to and newest["template"] == "already_registered" and newest["state"] == "queued"
    assert newest["links"] == ["http://localhost:3000/login", "http://localhost:3000/reset?t=9"]
    assert newest["subject"] and newest["text_body"] and newest["html_body"] and newest["created_at"]
    assert items[1]["links"][0].startswith("http://localhost:3000/verify-email?token=")

    limited = await dev_client.get("/api/v1/dev/outbox", params={"limit": 1})
    assert limited.status_code == 200 and len(limited.json()["items"]) == 1

    one = await dev_client.get(f"/api/v1/dev/outbox/{first}")
    assert one.status_code == 200 and one.json() == items[1]

    page = await dev_client.get(f"/api/v1/dev/outbox/{first}/html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.text == items[1]["html_body"]
    assert f'href="{items[1]["links"][0]}"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


async def test_outbox_errors_are_problems(dev_client: httpx.AsyncClient) -> None:
    missing = await dev_client.get(f"/api/v1/dev/outbox/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "mail_not_found"
    missing_html = await dev_client.get(f"/api/v1/dev/outbox/{uuid.uuid4()}/html")
    assert missing_html.status_code == 404 and missing_html.json()["code"] == "mail_not_found"
    bad_id = await dev_client.get("/api/v1/dev/outbox/not-a-uuid")
    assert bad_id.status_code == 422 and bad_id.json()["code"] == "validation_failed"
    bad_limit = await dev_client.get("/api/v1/dev/outbox", params={"limit": 0})
    assert bad_limit.status_code == 422 and bad_limit.json()["code"] == "validation_failed"


def test_the_guard_opens_the_outbox_only_locally(settings_env: Callable[..., None]) -> None:
    from shared.errors import NotFound

    for env in ("local", "test"):
        settings_env(APP_ENV=env)
        service.require_dev_outbox(get_settings())
    settings_env(APP_ENV="production", SUPABASE_JWT_SECRET=secrets.token_urlsafe(40))
    with pytest.raises(NotFound):
        service.require_dev_outbox(get_settings())


async def test_in_production_the_outbox_does_not_exist(
    pool: AsyncConnectionPool, dev_client: httpx.AsyncClient, settings_env: Callable[..., None]
) -> None:
    mail_id = await verify_mail(pool)
    settings_env(APP_ENV="production", SUPABASE_JWT_SECRET=secrets.token_urlsafe(40))
    await reset_all()
    unknown = await dev_client.get("/api/v1/dev/no-such-route")
    for path in ("/api/v1/dev/outbox", f"/api/v1/dev/outbox/{mail_id}", f"/api/v1/dev/outbox/{mail_id}/html"):
        response = await dev_client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == "not_found" and "outbox" not in response.text.replace(path, "")
        # Indistinguishable from a path no route serves (apart from the path itself).
        strip = {"instance", "request_id"}
        assert {k: v for k, v in body.items() if k not in strip} == {
            k: v for k, v in unknown.json().items() if k not in strip
        }
