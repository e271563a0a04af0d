"""Deliveries per second over time, one panel per Telegram scenario, drawn with Pillow.

Each panel has its own vertical scale (30 msg/s and 1,000 msg/s do not share an axis); a
dashed line marks the platform's ceiling. Series are lists of counts, one per second after
the approval (or the first send, for the baselines).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH, PANEL_HEIGHT = 1100, 250
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 70, 230, 34, 34
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
GRID, AXIS, TEXT, CEILING = "#dddddd", "#444444", "#222222", "#888888"


@dataclass
class Panel:
    title: str
    series: dict[str, Sequence[int]] = field(default_factory=dict)  # label → per second
    ceiling: float | None = None


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = max(span / ticks, 1e-9)
    magnitude = 10 ** len(str(int(raw))) / 10 if raw >= 1 else 1.0
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def _dashed(draw: ImageDraw.ImageDraw, y: float, x0: float, x1: float) -> None:
    x = x0
    while x < x1:
        draw.line([(x, y), (min(x + 8, x1), y)], fill=CEILING, width=1)
        x += 14


def draw_panel(draw: ImageDraw.ImageDraw, panel: Panel, top: int,
               font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> None:
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    upper, lower = top + MARGIN_TOP, top + PANEL_HEIGHT - MARGIN_BOTTOM
    seconds = max((len(values) for values in panel.series.values()), default=1)
    peak = max([max(values, default=0) for values in panel.series.values()] +
               [panel.ceiling or 0, 1])
    y_max = peak * 1.15
    y_step = _nice_step(y_max)
    x_step = _nice_step(max(seconds, 1), 10)

    def px(second: float, value: float) -> tuple[float, float]:
        return (left + (right - left) * second / max(seconds, 1),
                lower - (lower - upper) * value / y_max)

    draw.text((left, top + 8), panel.title, fill=TEXT, font=font)
    value = 0.0
    while value <= y_max:
        _, y = px(0, value)
        draw.line([(left, y), (right, y)], fill=GRID)
        draw.text((left - 8, y), f"{value:g}", fill=TEXT, font=font, anchor="rm")
        value += y_step
    second = 0.0
    while second <= seconds:
        x, _ = px(second, 0)
        draw.line([(x, lower), (x, lower + 4)], fill=AXIS)
        draw.text((x, lower + 6), f"{second:g}", fill=TEXT, font=font, anchor="mt")
        second += x_step
    draw.line([(left, upper), (left, lower), (right, lower)], fill=AXIS)
    if panel.ceiling:
        _, y = px(0, panel.ceiling)
        _dashed(draw, y, left, right)
        draw.text((right - 4, y - 3), f"ceiling {panel.ceiling:g}/s", fill=CEILING, font=font,
                  anchor="rb")
    for index, (label, values) in enumerate(panel.series.items()):
        colour = COLOURS[index % len(COLOURS)]
        # Each count belongs to the middle of its second.
        points = [px(i + 0.5, v) for i, v in enumerate(values)]
        if len(points) == 1:
            draw.ellipse([points[0][0] - 2, points[0][1] - 2, points[0][0] + 2,
                          points[0][1] + 2], fill=colour)
        elif points:
            draw.line(points, fill=colour, width=2)
        legend_y = upper + 10 + 18 * index
        draw.line([(right + 8, legend_y), (right + 26, legend_y)], fill=colour, width=3)
        draw.text((right + 32, legend_y), label, fill=TEXT, font=font, anchor="lm")


def render(panels: list[Panel], path: Path, title: str) -> None:
    font = ImageFont.load_default(size=13)
    header = 40
    image = Image.new("RGB", (WIDTH, header + PANEL_HEIGHT * max(len(panels), 1)), "white")
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN_LEFT, 12), title, fill=TEXT, font=ImageFont.load_default(size=16))
    for index, panel in enumerate(panels):
        draw_panel(draw, panel, header + index * PANEL_HEIGHT, font)
    image.save(path, "PNG")
