"""HTTP routes of viewer profiles (/api/v1/users/me/profiles): profiles, the active profile, PINs, avatars."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from shared.accounts.schemas import TokenResponse
from shared.http.auth import Principal, current_principal
from shared.http.client_meta import Meta
from shared.http.openapi import BEARER_ERRORS, errors
from shared.images.schemas import ImageUploadTicket
from shared.infra.db import Tx
from shared.profiles import avatars, service
from shared.profiles.schemas import (
    AvatarConfirm,
    AvatarUploadRequest,
    ProfileCreate,
    ProfileRead,
    ProfileUpdate,
    SelectProfileRequest,
    SetPinRequest,
)
from shared.settings import get_settings

router = APIRouter(prefix="/api/v1/users/me/profiles", tags=["users"])

Caller = Annotated[Principal, Depends(current_principal)]
_AUTH = {401: BEARER_ERRORS, 503: ["service_unavailable"]}
_INVALID = ["validation_failed"]
_MANAGE = {403: ["kids_profile_restricted"]}
_FOUND = {404: ["not_found"]}


@router.get(
    "", response_model=list[ProfileRead], summary="The account's viewer profiles", responses=errors(_AUTH)
)
async def list_profiles(tx: Tx, caller: Caller) -> list[ProfileRead]:
    """Oldest first; the session's active profile is marked `active`."""
    return await service.read_profiles(tx, user_id=caller.user_id, active_profile_id=caller.profile_id)


@router.post(
    "",
    status_code=201,
    response_model=ProfileRead,
    summary="Add a viewer profile (at most 5)",
    responses=errors({**_AUTH, **_MANAGE, 409: ["profile_limit", "profile_name_taken"], 422: _INVALID}),
)
async def create_profile(body: ProfileCreate, tx: Tx, caller: Caller) -> ProfileRead:
    """A kids profile is capped at maturity '7+'."""
    row = await service.create_profile(
        tx, user_id=caller.user_id, data=body, active_profile_id=caller.profile_id
    )
    return await service.to_read(row, active_profile_id=caller.profile_id)


@router.get(
    "/{profile_id}",
    response_model=ProfileRead,
    summary="One viewer profile",
    responses=errors({**_AUTH, **_FOUND}),
)
async def get_profile(profile_id: uuid.UUID, tx: Tx, caller: Caller) -> ProfileRead:
    """A profile of the signed-in account."""
    row = await service.get_profile(tx, user_id=caller.user_id, profile_id=profile_id)
    return await service.to_read(row, active_profile_id=caller.profile_id)


@router.patch(
    "/{profile_id}",
    response_model=ProfileRead,
    summary="Change a viewer profile",
    responses=errors({**_AUTH, **_MANAGE, **_FOUND, 409: ["profile_name_taken"], 422: _INVALID}),
)
async def update_profile(profile_id: uuid.UUID, body: ProfileUpdate, tx: Tx, caller: Caller) -> ProfileRead:
    """Name, language, maturity level, kids flag, autoplay; omitted fields stay as they are."""
    row = await service.update_profile(
        tx, user_id=caller.user_id, profile_id=profile_id, changes=body, active_profile_id=caller.profile_id
    )
    return await service.to_read(row, active_profile_id=caller.profile_id)


@router.delete(
    "/{profile_id}",
    status_code=204,
    summary="Delete a viewer profile (not the last one)",
    responses=errors({**_AUTH, **_MANAGE, **_FOUND, 409: ["last_profile"]}),
)
async def delete_profile(profile_id: uuid.UUID, tx: Tx, caller: Caller) -> Response:
    """Sessions on that profile continue with no active profile."""
    await service.delete_profile(
        tx,
        settings=get_settings(),
        user_id=caller.user_id,
        profile_id=profile_id,
        active_profile_id=caller.profile_id,
    )
    return Response(status_code=204)


@router.post(
    "/{profile_id}/select",
    response_model=TokenResponse,
    summary="Switch the session to this profile (new tokens)",
    responses=errors(
        {
            **_AUTH,
            400: ["session_required"],
            403: ["pin_required", "invalid_pin"],
            **_FOUND,
            422: _INVALID,
            429: ["rate_limited", "pin_locked"],
        }
    ),
)
async def select_profile(
    profile_id: uuid.UUID, tx: Tx, meta: Meta, caller: Caller, body: SelectProfileRequest | None = None
) -> TokenResponse:
    """Send the PIN when the profile has one; the new access token carries the profile as `profile_id`."""
    return await service.select_profile(
        tx,
        settings=get_settings(),
        user_id=caller.user_id,
        session_id=caller.session_id,
        profile_id=profile_id,
        pin=body.pin if body else None,
        meta=meta,
    )


@router.put(
    "/{profile_id}/pin",
    response_model=ProfileRead,
    summary="Set or clear a profile's 4-digit PIN (needs the account password)",
    responses=errors(
        {
            **_AUTH,
            403: [
                "kids_profile_restricted",
                "reauthentication_failed",
                "mfa_required",
                "invalid_mfa_code",
                "reauthentication_unavailable",
            ],
            **_FOUND,
            422: _INVALID,
            429: ["rate_limited"],
        }
    ),
)
async def set_pin(
    profile_id: uuid.UUID, body: SetPinRequest, tx: Tx, meta: Meta, caller: Caller
) -> ProfileRead:
    """`pin: null` removes the PIN; a 2FA code is needed too when the account has 2FA."""
    row = await service.set_pin(
        tx,
        user_id=caller.user_id,
        profile_id=profile_id,
        pin=body.pin,
        password=body.password,
        code=body.code,
        meta=meta,
        active_profile_id=caller.profile_id,
    )
    return await service.to_read(row, active_profile_id=caller.profile_id)


@router.post(
    "/{profile_id}/avatar/upload",
    response_model=ImageUploadTicket,
    summary="Get a direct-upload ticket for a new avatar",
    responses=errors(
        {
            **_AUTH,
            **_MANAGE,
            **_FOUND,
            422: ["validation_failed", "unsupported_image_type", "image_too_large"],
            429: ["rate_limited"],
        }
    ),
)
async def avatar_upload(
    profile_id: uuid.UUID, body: AvatarUploadRequest, tx: Tx, caller: Caller
) -> ImageUploadTicket:
    """PNG, JPEG or WebP up to 2 MB, uploaded by the browser to storage or Cloudinary, then confirmed."""
    await service.profile_for_avatar_change(
        tx, user_id=caller.user_id, profile_id=profile_id, active_profile_id=caller.profile_id
    )
    return await avatars.upload_ticket(
        settings=get_settings(),
        user_id=caller.user_id,
        profile_id=profile_id,
        content_type=body.content_type,
        size=body.size,
    )


@router.put(
    "/{profile_id}/avatar",
    response_model=ProfileRead,
    summary="Use an uploaded image as the avatar (verified first)",
    responses=errors(
        {
            **_AUTH,
            400: ["invalid_avatar_key", "invalid_avatar_signature", "avatar_not_uploaded"],
            **_MANAGE,
            **_FOUND,
            422: ["validation_failed", "invalid_image"],
        }
    ),
)
async def confirm_avatar(profile_id: uuid.UUID, body: AvatarConfirm, tx: Tx, caller: Caller) -> ProfileRead:
    """Storage: {key}; Cloudinary: {public_id, version, signature} from the upload's answer."""
    profile = await service.profile_for_avatar_change(
        tx, user_id=caller.user_id, profile_id=profile_id, active_profile_id=caller.profile_id
    )
    row = await avatars.confirm(tx, settings=get_settings(), profile=profile, body=body)
    return await service.to_read(row, active_profile_id=caller.profile_id)


@router.delete(
    "/{profile_id}/avatar",
    response_model=ProfileRead,
    summary="Remove the avatar",
    responses=errors({**_AUTH, **_MANAGE, **_FOUND}),
)
async def remove_avatar(profile_id: uuid.UUID, tx: Tx, caller: Caller) -> ProfileRead:
    """The image is deleted too."""
    profile = await service.profile_for_avatar_change(
        tx, user_id=caller.user_id, profile_id=profile_id, active_profile_id=caller.profile_id
    )
    row = await avatars.remove(tx, settings=get_settings(), profile=profile)
    return await service.to_read(row, active_profile_id=caller.profile_id)
