"""Every size limit, in one place: what the platforms accept and what the bot accepts.

Platform limits are the platforms' published rules; the bot's own limits keep a typo or a
flood from becoming a stored megabyte. Everything that checks or cuts a size imports it
from here, so a limit changed is changed everywhere.
"""

from __future__ import annotations

from datetime import timedelta

# -- Telegram Bot API ----------------------------------------------------------------------
TELEGRAM_TEXT_CHARS = 4096  # sendMessage text, counted after entity parsing
TELEGRAM_CAPTION_CHARS = 1024  # a photo's or document's caption
CALLBACK_DATA_BYTES = 64  # InlineKeyboardButton.callback_data, UTF-8 (every button's data)
TELEGRAM_MAX_COMMANDS = 100  # setMyCommands
TELEGRAM_COMMAND_DESCRIPTION_CHARS = 256  # BotCommand.description
TELEGRAM_PHOTO_BYTES = 10 * 1024 * 1024  # sendPhoto by upload
TELEGRAM_PHOTO_SIDES = 10_000  # sendPhoto: width + height at most
TELEGRAM_PHOTO_RATIO = 20  # sendPhoto: the longer side at most 20 × the shorter
TELEGRAM_DOWNLOAD_BYTES = 20 * 1024 * 1024  # getFile: bots download files up to this size

# -- Matrix ----------------------------------------------------------------------------------
MATRIX_EVENT_BYTES = 65_536  # a whole event as the homeserver counts it

# -- What people may type or send ------------------------------------------------------------
INPUT_CHARS = 20_000  # any incoming text, before it is parsed
ALERT_TEXT_CHARS = 4000  # an alert's text (fits a Telegram message with its header)
TIP_TEXT_CHARS = 2000  # a tip, and an officer's answer to it
REASON_CHARS = 500  # a rejection's reason
PERIMETER_TEXT_CHARS = 20_000
PERIMETER_PARTS = 50
PERIMETER_FILE_BYTES = 2 * 1024 * 1024  # fichier:NAME.geojson
CAP_DOCUMENT_BYTES = 256_000  # an imported CAP document
PHOTO_BYTES = 5 * 1024 * 1024  # an alert's photo (under Telegram's 10 MB for sendPhoto)
PHOTO_KEPT = timedelta(minutes=10)  # an operator's photo waiting for their next alert
COMMUNES_PER_SUBSCRIBER = 30
PLACES_PER_MESSAGE = 20
PLACE_NAME_CHARS = 100
STAFF_NAME_CHARS = 64  # a staff member's name (configured or a platform display name)

# -- What the bot stores or shows ------------------------------------------------------------
DELIVERY_ERROR_CHARS = 500  # deliveries.last_error
CAP_HEADLINE_CHARS = 160
