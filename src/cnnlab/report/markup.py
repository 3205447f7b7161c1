"""The page's HTML pieces, shared by the page (html.py) and each task's section: PNGs inlined
as data: URIs, numbers and tables."""

import base64
from html import escape


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def img(png: bytes, alt: str, css: str = "") -> str:
    extra = f' class="{css}"' if css else ""
    return f'<img src="{data_uri(png)}" alt="{escape(alt)}"{extra}>'


def number(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"
    return escape(str(value))


def table(head: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells are already escaped HTML, numbers right-aligned by their class."""
    top = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="num">{c}</td>' if i else f"<td>{c}</td>" for i, c in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{top}</tr>{body}</table>"


def gallery(tiles: list[tuple[str, str]], css: str = "gallery") -> str:
    """A grid of figures: ``tiles`` are (images' HTML, caption HTML), both already escaped."""
    figures = "".join(
        f"<figure>{pictures}<figcaption>{text}</figcaption></figure>" for pictures, text in tiles
    )
    return f'<div class="{css}">{figures}</div>'
