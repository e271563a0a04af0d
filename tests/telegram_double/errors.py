"""Bot API error replies, worded as the real server words them.

Handlers raise :class:`ApiError`; the server turns it into
``{"ok": false, "error_code": N, "description": "...", "parameters": {...}}`` with HTTP status N,
which is exactly what python-telegram-bot's ``BaseRequest._request_wrapper`` inspects.
"""

from __future__ import annotations

from typing import Any

# Descriptions after the "Bad Request: " / "Forbidden: " prefix, as Telegram sends them.
MESSAGE_TOO_LONG = "message is too long"
CAPTION_TOO_LONG = "message caption is too long"
TEXT_EMPTY = "message text is empty"
CHAT_ID_EMPTY = "chat_id is empty"
CHAT_NOT_FOUND = "chat not found"
USER_NOT_FOUND = "user not found"
USER_ID_INVALID = "invalid user_id specified"
BUTTON_DATA_INVALID = "BUTTON_DATA_INVALID"
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
GROUP_MIGRATED = "group chat was upgraded to a supergroup chat"
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)
EDIT_NOT_FOUND = "message to edit not found"
CANT_EDIT = "message can't be edited"
NO_TEXT_TO_EDIT = "there is no text in the message to edit"
DELETE_NOT_FOUND = "message to delete not found"
CANT_DELETE = "message can't be deleted"
REPLY_NOT_FOUND = "message to be replied not found"
MESSAGE_ID_MISSING = "message identifier is not specified"
NO_PHOTO = "there is no photo in the request"
WRONG_FILE_ID = "wrong file identifier/HTTP URL specified"
INVALID_FILE_ID = "invalid file_id"
FILE_TOO_BIG = "file is too big"  # getFile beyond 20 MB
ENTITY_TOO_LARGE = "Request Entity Too Large"  # an upload beyond the method's size limit
UNSUPPORTED_PARSE_MODE = "unsupported parse_mode"
PARSE_ENTITIES = "can't parse entities: "
INLINE_KEYBOARD_EXPECTED = "inline keyboard expected"
BUTTON_WITHOUT_ACTION = (
    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
)
BLOCKED_BY_USER = "bot was blocked by the user"
USER_DEACTIVATED = "user is deactivated"
CANT_INITIATE = "bot can't initiate conversation with a user"
WEBHOOK_ACTIVE = (
    "can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)
POLL_TERMINATED = (
    "terminated by other getUpdates request; make sure that only one bot instance is running"
)


class ApiError(Exception):
    """A Bot API failure: HTTP status ``code``, ``description`` and optional ``parameters``."""

    def __init__(
        self,
        code: int,
        description: str,
        parameters: dict[str, int] | None = None,
        *,
        scope: str | None = None,
    ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters
        # Which limit produced a 429 (global/paid_global/private/group/injected); stats only.
        self.scope = scope

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(reason: str, **parameters: int) -> ApiError:
    return ApiError(400, f"Bad Request: {reason}", parameters or None)


def forbidden(reason: str) -> ApiError:
    return ApiError(403, f"Forbidden: {reason}")


def conflict(reason: str) -> ApiError:
    return ApiError(409, f"Conflict: {reason}")


def too_many_requests(retry_after: int, scope: str) -> ApiError:
    return ApiError(
        429,
        f"Too Many Requests: retry after {retry_after}",
        {"retry_after": retry_after},
        scope=scope,
    )


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized")


def not_found() -> ApiError:
    return ApiError(404, "Not Found")
