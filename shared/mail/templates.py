"""The account emails: small functions returning blocks, rendered to plain text and escaped HTML."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

PRODUCT = "Cinema Online"
_SUPPORT = "Cinema Online will never ask for your password or sign-in codes by email."
_FOOTER = f"{PRODUCT} sent this automated message about your account. Replies to this address are not read."


@dataclass(frozen=True)
class Paragraph:
    """Body text (values inside are escaped in HTML like everything else)."""

    text: str


@dataclass(frozen=True)
class Button:
    """A call to action: a button in HTML, the label and the bare URL on its own line in text."""

    label: str
    url: str


@dataclass(frozen=True)
class Facts:
    """Label/value lines, e.g. the device and time of a new sign-in."""

    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Note:
    """Small print under the main content."""

    text: str


Block = Paragraph | Button | Facts | Note


@dataclass(frozen=True)
class Draft:
    """What a template produces before rendering."""

    subject: str
    preheader: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class RenderedMail:
    """A rendered message: one-line subject, plain text and HTML bodies."""

    subject: str
    text: str
    html: str


class Values:
    """The template's data; a missing key is a programming error (ValueError), never an empty gap."""

    def __init__(self, template: str, data: Mapping[str, str]) -> None:
        self._template = template
        self._data = data

    def __getitem__(self, key: str) -> str:
        value = self._data.get(key)
        if value is None or not str(value).strip():
            raise ValueError(f"mail template {self._template!r} needs data[{key!r}]")
        return str(value)

    def get(self, key: str) -> str | None:
        """The value, or None when the caller did not pass it."""
        value = self._data.get(key)
        return str(value) if value is not None and str(value).strip() else None

    def link(self, key: str) -> str:
        """A required absolute http(s) URL: anything else (javascript:, relative) is refused."""
        return _check_url(self._template, key, self[key])

    def optional_link(self, key: str) -> str | None:
        """An optional absolute http(s) URL."""
        value = self.get(key)
        return None if value is None else _check_url(self._template, key, value)


def _check_url(template: str, key: str, url: str) -> str:
    if not re.fullmatch(r"https?://[^\s<>\"']+", url):
        raise ValueError(f"mail template {template!r}: data[{key!r}] must be an absolute http(s) URL")
    return url


def _one_line(text: str, *, limit: int = 200) -> str:
    """Collapse to one printable line: a subject is a header, and no value may break it."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())[:limit]


def _if_not_you(v: Values) -> tuple[Block, ...]:
    """The security footer of every notice: what to do when the change was not the owner's doing."""
    reset = v.optional_link("reset_link")
    if reset:
        return (
            Paragraph("If this wasn't you, reset your password right away to secure your account."),
            Button("Reset password", reset),
            Note(_SUPPORT),
        )
    return (
        Paragraph(
            'If this wasn\'t you, reset your password right away: choose "Forgot password" on the '
            f"{PRODUCT} sign-in page."
        ),
        Button(f"Go to {PRODUCT}", v.link("site_url")),
        Note(_SUPPORT),
    )


def verify_email(v: Values) -> Draft:
    """Sign-up: confirm the address."""
    return Draft(
        subject=f"Confirm your email for {PRODUCT}",
        preheader="One click and you're ready to start watching.",
        blocks=(
            Paragraph(f"Welcome to {PRODUCT}!"),
            Paragraph("Please confirm that this is your email address to finish setting up your account."),
            Button("Confirm email address", v.link("link")),
            Note(
                f"This link works once and expires in {v['email_link_lifetime']}. If you didn't create a "
                f"{PRODUCT} account, you can ignore this email: nothing will be activated."
            ),
        ),
    )


def already_registered(v: Values) -> Draft:
    """Sign-up with an address that already has an account: tell the owner, not the person signing up."""
    return Draft(
        subject=f"You already have a {PRODUCT} account",
        preheader="Someone tried to sign up with your email address.",
        blocks=(
            Paragraph(
                f"Someone (hopefully you) tried to create a {PRODUCT} account with this email address. "
                "You already have an account, so no new one was created."
            ),
            Paragraph("Sign in to keep watching:"),
            Button("Sign in", v.link("login_link")),
            Paragraph("Forgot your password? You can choose a new one:"),
            Button("Reset password", v.link("reset_link")),
            Note("If this wasn't you, you can ignore this email: your account has not changed."),
        ),
    )


def reset_password(v: Values) -> Draft:
    """Password reset link."""
    return Draft(
        subject=f"Reset your {PRODUCT} password",
        preheader="Choose a new password for your account.",
        blocks=(
            Paragraph(f"We received a request to reset the password of your {PRODUCT} account."),
            Button("Choose a new password", v.link("link")),
            Note(
                f"This link works once and expires in {v['reset_link_lifetime']}. If you didn't ask to "
                "reset your password, ignore this email: your password stays the same."
            ),
            Note(_SUPPORT),
        ),
    )


def password_changed(v: Values) -> Draft:
    """Notice after a password change or reset."""
    return Draft(
        subject=f"Your {PRODUCT} password was changed",
        preheader="Your password was just changed.",
        blocks=(
            Paragraph(f"The password of your {PRODUCT} account was just changed."),
            Paragraph("For your security, other devices signed in to your account have been signed out."),
            *_if_not_you(v),
        ),
    )


def email_change_verify(v: Values) -> Draft:
    """Sent to the new address: confirm it before it replaces the old one."""
    new_email = v["new_email"]
    return Draft(
        subject="Confirm your new email address",
        preheader=f"Confirm {new_email} for your {PRODUCT} account.",
        blocks=(
            Paragraph(f"You asked to use {new_email} as the email address of your {PRODUCT} account."),
            Paragraph("Confirm it to finish the change:"),
            Button("Confirm new email address", v.link("link")),
            Note(
                f"This link works once and expires in {v['email_link_lifetime']}. If you didn't ask for "
                "this, ignore this email: nothing will change."
            ),
        ),
    )


def email_change_notice(v: Values) -> Draft:
    """Sent to the old address: the account's email is being changed."""
    new_email = v["new_email"]
    return Draft(
        subject=f"The email address of your {PRODUCT} account is changing",
        preheader=f"A change to {new_email} was requested.",
        blocks=(
            Paragraph(
                f"A request was made to change the email address of your {PRODUCT} account from this "
                f"address to {new_email}. The change takes effect once the new address is confirmed."
            ),
            *_if_not_you(v),
        ),
    )


def new_device(v: Values) -> Draft:
    """A sign-in from a device not seen before."""
    # The device line comes from a User-Agent the signer-in chose: keep it to one short line.
    device = _one_line(v["device"], limit=120)
    return Draft(
        subject=f"New sign-in to your {PRODUCT} account",
        preheader=f"Signed in on {device}.",
        blocks=(
            Paragraph(f"Someone just signed in to your {PRODUCT} account from a new device."),
            Facts((("Device", device), ("IP address", _one_line(v["ip"])), ("Time", _one_line(v["time"])))),
            Paragraph(
                "If this was you, there's nothing to do. You can see every device signed in to your "
                "account, and sign any of them out, in your account settings."
            ),
            *_if_not_you(v),
        ),
    )


def mfa_enabled(v: Values) -> Draft:
    """Two-step verification turned on."""
    return Draft(
        subject="Two-step verification is now on",
        preheader="Your account is now better protected.",
        blocks=(
            Paragraph(
                f"Two-step verification was turned on for your {PRODUCT} account. From now on, signing in "
                "takes your password and a code from your authenticator app."
            ),
            Paragraph("Keep your backup codes somewhere safe: they get you in if you lose your phone."),
            *_if_not_you(v),
        ),
    )


def mfa_disabled(v: Values) -> Draft:
    """Two-step verification turned off."""
    return Draft(
        subject="Two-step verification was turned off",
        preheader="Your account no longer asks for a code at sign-in.",
        blocks=(
            Paragraph(
                f"Two-step verification was turned off for your {PRODUCT} account. Signing in now takes "
                "only your password. You can turn it back on at any time in your account settings."
            ),
            *_if_not_you(v),
        ),
    )


def backup_codes_regenerated(v: Values) -> Draft:
    """New backup codes replace the old ones."""
    return Draft(
        subject=f"New backup codes for your {PRODUCT} account",
        preheader="Your previous backup codes no longer work.",
        blocks=(
            Paragraph(
                f"A new set of two-step verification backup codes was created for your {PRODUCT} account. "
                "Your previous backup codes no longer work."
            ),
            *_if_not_you(v),
        ),
    )


def account_locked(v: Values) -> Draft:
    """Progressive lockout: the owner recovers through a password reset."""
    return Draft(
        subject=f"Your {PRODUCT} account is temporarily locked",
        preheader="Too many sign-in attempts with a wrong password.",
        blocks=(
            Paragraph(
                f"We temporarily locked sign-in to your {PRODUCT} account after several attempts with a "
                "wrong password."
            ),
            Paragraph("To get back in right away, choose a new password:"),
            Button("Reset password", v.link("reset_link")),
            Paragraph(
                "If it was you mistyping, you can also wait a little and try again. If it wasn't you, "
                "someone may be trying to guess your password: resetting it keeps your account safe."
            ),
            Note(_SUPPORT),
        ),
    )


def identity_linked(v: Values) -> Draft:
    """A social sign-in was attached to the account."""
    provider = _one_line(v["provider"], limit=40)
    return Draft(
        subject=f"{provider} sign-in was added to your account",
        preheader=f"You can now sign in with {provider}.",
        blocks=(
            Paragraph(
                f"Your {PRODUCT} account can now be signed in to with {provider}. You can remove it under "
                "Account, Security."
            ),
            *_if_not_you(v),
        ),
    )


def account_deleted(v: Values) -> Draft:
    """Confirmation that the account and its personal data are gone."""
    return Draft(
        subject=f"Your {PRODUCT} account was deleted",
        preheader="Your account and personal data have been removed.",
        blocks=(
            Paragraph(
                f"Your {PRODUCT} account and its personal data have been deleted, as you asked. "
                "This cannot be undone."
            ),
            Paragraph("We're sorry to see you go. You're welcome back any time with a new account."),
            Note(f"If you didn't delete your account, contact {PRODUCT} support right away."),
        ),
    )


def receipt(v: Values) -> Draft:
    """Receipt of a paid invoice: built by the invoices domain (imported here, which imports this module)."""
    from shared.invoices.receipt import receipt as build

    return build(v)


TEMPLATES: dict[str, Callable[[Values], Draft]] = {
    "verify_email": verify_email,
    "already_registered": already_registered,
    "reset_password": reset_password,
    "password_changed": password_changed,
    "email_change_verify": email_change_verify,
    "email_change_notice": email_change_notice,
    "new_device": new_device,
    "mfa_enabled": mfa_enabled,
    "identity_linked": identity_linked,
    "mfa_disabled": mfa_disabled,
    "backup_codes_regenerated": backup_codes_regenerated,
    "account_locked": account_locked,
    "account_deleted": account_deleted,
    "receipt": receipt,
}


def _text_body(draft: Draft) -> str:
    parts: list[str] = []
    for block in draft.blocks:
        if isinstance(block, Paragraph | Note):
            parts.append(block.text)
        elif isinstance(block, Button):
            parts.append(f"{block.label}:\n{block.url}")
        else:
            parts.append("\n".join(f"{label}: {value}" for label, value in block.rows))
    parts.append(f"-- \n{_FOOTER}")
    return "\n\n".join(parts) + "\n"


_E = html.escape  # quote=True by default: safe inside attribute values as well as text


def _html_block(block: Block) -> str:
    if isinstance(block, Paragraph):
        return f'<p style="margin:0 0 16px">{_E(block.text)}</p>'
    if isinstance(block, Note):
        return f'<p style="margin:0 0 16px;font-size:13px;color:#6b6b6b">{_E(block.text)}</p>'
    if isinstance(block, Button):
        return (
            '<p style="margin:24px 0">'
            f'<a href="{_E(block.url)}" style="background:#e50914;color:#ffffff;text-decoration:none;'
            'padding:12px 24px;border-radius:4px;font-weight:bold;display:inline-block">'
            f"{_E(block.label)}</a>"
            "</p>"
            f'<p style="margin:0 0 16px;font-size:12px;color:#6b6b6b;word-break:break-all">'
            f"Or paste this link into your browser: {_E(block.url)}</p>"
        )
    rows = "".join(
        f'<tr><td style="padding:2px 16px 2px 0;color:#6b6b6b">{_E(label)}</td><td>{_E(value)}</td></tr>'
        for label, value in block.rows
    )
    return f'<table role="presentation" style="margin:0 0 16px;border-collapse:collapse">{rows}</table>'


def _html_body(draft: Draft, subject: str) -> str:
    content = "".join(_html_block(block) for block in draft.blocks)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_E(subject)}</title></head>"
        '<body style="margin:0;padding:0;background:#f3f3f3">'
        # The preheader is the grey preview line mail clients show next to the subject.
        f'<div style="display:none;max-height:0;overflow:hidden">{_E(draft.preheader)}</div>'
        '<div style="max-width:560px;margin:0 auto;padding:32px 24px;background:#ffffff;'
        'font-family:Helvetica,Arial,sans-serif;font-size:16px;line-height:1.5;color:#141414">'
        f'<div style="font-size:22px;font-weight:bold;color:#e50914;margin-bottom:24px">{_E(PRODUCT)}</div>'
        f"{content}"
        '<hr style="border:none;border-top:1px solid #e5e5e5;margin:24px 0">'
        f'<p style="margin:0;font-size:12px;color:#8c8c8c">{_E(_FOOTER)}</p>'
        "</div></body></html>"
    )


def render(template: str, data: Mapping[str, str]) -> RenderedMail:
    """Render a named template; an unknown name or missing value raises ValueError (a programming error)."""
    build = TEMPLATES.get(template)
    if build is None:
        raise ValueError(f"unknown mail template {template!r}")
    draft = build(Values(template, data))
    subject = _one_line(draft.subject)
    return RenderedMail(subject=subject, text=_text_body(draft), html=_html_body(draft, subject))
