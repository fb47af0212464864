"""The sign-out check of the key path: logins of ours, and Supabase Auth logins (no session of ours)."""

from __future__ import annotations

import time
import uuid

from shared.streaming.sessions import StreamSession


def stream(*, auth_session_id: str | None, started_at: float, user_id: uuid.UUID) -> StreamSession:
    return StreamSession(
        id=str(uuid.uuid4()),
        user_id=str(user_id),
        profile_id=None,
        device_id="device",
        device_class="web",
        title_id=str(uuid.uuid4()),
        episode_id=None,
        content_id=str(uuid.uuid4()),
        asset_id=str(uuid.uuid4()),
        max_height=1080,
        ads=False,
        country=None,
        entitlement_id=None,
        started_at=started_at,
        expires_at=started_at + 90,
        auth_session_id=auth_session_id,
    )


async def test_own_login_session_revoked() -> None:
    from shared.accounts.authn import revoke_sessions
    from shared.infra.redis import get_redis
    from shared.licences.service import signed_out
    from shared.settings import get_settings

    login = uuid.uuid4()
    session = stream(auth_session_id=str(login), started_at=time.time(), user_id=uuid.uuid4())
    assert not await signed_out(session)
    await revoke_sessions(await get_redis(), [login], settings=get_settings())
    assert await signed_out(session)


async def test_supabase_login_ends_with_every_session_of_the_user() -> None:
    from shared.accounts.authn import end_supabase_tokens
    from shared.infra.redis import get_redis
    from shared.licences.service import signed_out
    from shared.settings import get_settings

    user_id = uuid.uuid4()
    before = stream(auth_session_id=None, started_at=time.time() - 5, user_id=user_id)
    assert not await signed_out(before)
    await end_supabase_tokens(await get_redis(), user_id, settings=get_settings())
    assert await signed_out(before)
    # A stream started after the sign-out (a new login) is not affected.
    after = stream(auth_session_id=None, started_at=time.time() + 1, user_id=user_id)
    assert not await signed_out(after)
