"""An invitation's QR code and its printable A4 poster (PNG), drawn locally.

The QR code is segno's (pure Python, no system library): the poster shows exactly the
matrix segno computed for the link, each module a square of whole pixels, so a phone at
arm's length reads it from a print.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import segno
from PIL import Image, ImageDraw, ImageFont

from bot.i18n import Translator
from bot.maps import font as load_font

A4_PX = (1240, 1754)  # A4 at 150 dpi: prints sharp, stays a small file
MARGIN = 90
QR_BORDER = 4  # the quiet zone readers need, in modules
QR_ERROR = "m"  # 15 % of the code may be lost (a crease, a pin)
INK, PAPER, ACCENT, MUTED = (20, 20, 20), (255, 255, 255), (0, 56, 147), (90, 90, 90)
_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@dataclass(frozen=True, slots=True)
class PosterText:
    """What a poster says; the QR code carries ``link``."""

    issuer: str  # the bot's signature: who sends the alerts
    partner: str  # who invites (printed large)
    community: str  # the community's label
    link: str  # what the QR code opens
    matrix_line: str  # « Sur Matrix : … » (may be empty)
    footer: str  # invitation number, validity
    platform: str = ""  # where the QR code leads: the poster's step 2 is worded for it


def qr_code(link: str) -> segno.QRCode:
    return segno.make(link, error=QR_ERROR, micro=False)


def qr_png(link: str, scale: int = 10) -> bytes:
    out = io.BytesIO()
    qr_code(link).save(out, kind="png", scale=scale, border=QR_BORDER)
    return out.getvalue()


def qr_image(link: str, size: int) -> Image.Image:
    """The code as a square of at most ``size`` pixels, whole pixels per module."""
    code = qr_code(link)
    rows = [list(row) for row in code.matrix]
    modules = len(rows) + 2 * QR_BORDER
    scale = max(1, size // modules)
    image = Image.new("L", (modules * scale, modules * scale), 255)
    draw = ImageDraw.Draw(image)
    for y, row in enumerate(rows):
        for x, dark in enumerate(row):
            if dark:
                left, top = (x + QR_BORDER) * scale, (y + QR_BORDER) * scale
                draw.rectangle((left, top, left + scale - 1, top + scale - 1), fill=0)
    return image


def _wrap(text: str, font: _Font, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split():
            candidate = f"{line} {word}".strip()
            if line and font.getlength(candidate) > width:
                lines.append(line)
                line = word
            else:
                line = candidate
        lines.append(line)
    return lines


class _Page:
    def __init__(self) -> None:
        self.image = Image.new("RGB", A4_PX, PAPER)
        self.draw = ImageDraw.Draw(self.image)
        self.y = MARGIN
        self.width = A4_PX[0] - 2 * MARGIN

    def text(self, text: str, size: int, bold: bool = False, fill: tuple[int, int, int] = INK,
             centred: bool = True, indent: int = 0, after: int = 18) -> None:
        font = load_font(size, bold)
        for line in _wrap(text, font, self.width - indent):
            left = MARGIN + indent
            if centred:
                left = (A4_PX[0] - int(font.getlength(line))) // 2
            self.draw.text((left, self.y), line, font=font, fill=fill)
            self.y += int(size * 1.25)
        self.y += after

    def rule(self) -> None:
        self.draw.rectangle((MARGIN, self.y, A4_PX[0] - MARGIN, self.y + 5), fill=ACCENT)
        self.y += 35

    def picture(self, image: Image.Image) -> None:
        left = (A4_PX[0] - image.width) // 2
        self.image.paste(image.convert("RGB"), (left, self.y))
        self.y += image.height + 20


def poster_png(text: PosterText, t: Translator) -> bytes:
    page = _Page()
    page.text(text.issuer, 34, bold=True, fill=ACCENT, after=6)
    page.text(t("invite.poster_title"), 52, bold=True, after=10)
    page.rule()
    page.text(t("invite.poster_invites", partner=text.partner, community=text.community), 36,
              after=20)
    page.picture(qr_image(text.link, 640))
    page.text(text.link, 22, fill=MUTED, after=30)
    for number, key in enumerate(("invite.poster_step1", "invite.poster_step2",
                                  "invite.poster_step3"), start=1):
        page.text(f"{number}. {t(key)}", 30, centred=False, indent=20, after=14)
    if text.matrix_line:
        page.text(text.matrix_line, 22, fill=MUTED, centred=False, indent=20, after=14)
    page.text(t("invite.poster_privacy"), 22, fill=MUTED, after=10)
    footer = load_font(20)
    lines = _wrap(text.footer, footer, page.width)
    for index, line in enumerate(lines):  # at the foot of the page, wrapped to its width
        top = A4_PX[1] - MARGIN - (len(lines) - index) * 26
        page.draw.text((MARGIN, top), line, font=footer, fill=MUTED)
    out = io.BytesIO()
    page.image.save(out, format="PNG", optimize=True, dpi=(150, 150))
    return out.getvalue()
