"""Route requests exactly as vercel.json does, by reading its rewrites (never a second table)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

_TOKEN = re.compile(r":(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<mod>[*+?]?)|\((?P<regex>[^)]*)\)")


@dataclass(frozen=True)
class Rewrite:
    """One vercel.json rewrite resolved to the api module that serves it."""

    source: str
    pattern: re.Pattern[str]
    destination: str

    @property
    def module(self) -> str | None:
        """Dotted module of an /api/<name> destination, None for other destinations."""
        match = re.fullmatch(r"/api/([A-Za-z0-9_]+)", self.destination)
        return f"api.{match[1]}" if match else None


def compile_source(source: str) -> re.Pattern[str]:
    """Translate Vercel's path-to-regexp source (':name', ':name*', '(regex)') into a regex."""
    out, position = [], 0
    for match in _TOKEN.finditer(source):
        out.append(re.escape(source[position : match.start()]))
        if match["regex"] is not None:
            out.append(f"({match['regex']})")
        else:
            mod = match["mod"]
            if mod in ("*", "+"):
                # '/:path*' also matches the bare prefix, as in path-to-regexp.
                if out and out[-1].endswith("/"):
                    out[-1] = out[-1][:-1]
                quant = "*" if mod == "*" else "+"
                out.append(
                    f"(?:/(?P<{match['name']}>[^?#]*))?" if quant == "*" else f"/(?P<{match['name']}>.+)"
                )
            else:
                out.append(f"(?P<{match['name']}>[^/]+){'?' if mod == '?' else ''}")
        position = match.end()
    out.append(re.escape(source[position:]))
    return re.compile("".join(out) + "$")


def load_rewrites(vercel_json: Path) -> list[Rewrite]:
    """Read vercel.json's rewrites in order."""
    config = json.loads(vercel_json.read_text())
    return [
        Rewrite(item["source"], compile_source(item["source"]), item["destination"])
        for item in config.get("rewrites", [])
    ]


def resolve(rewrites: list[Rewrite], path: str) -> Rewrite | None:
    """The first rewrite whose source matches the path, as Vercel applies them."""
    for rewrite in rewrites:
        if rewrite.pattern.match(path):
            return rewrite
    return None
