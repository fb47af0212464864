"""Route requests and add headers as vercel.json does, from its rewrites and headers (no second table)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_NAME = re.compile(r":(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<mod>[*+?]?)")


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


@dataclass(frozen=True)
class HeaderRule:
    """One vercel.json `headers` entry: the response headers of every path its source matches."""

    source: str
    pattern: re.Pattern[str]
    headers: tuple[tuple[str, str], ...]


def _group(source: str, start: int) -> int:
    """The index just after the ')' closing the '(' at `start` (nested groups and escapes allowed)."""
    depth, i = 0, start
    while i < len(source):
        char = source[i]
        if char == "\\":
            i += 2
            continue
        depth += (char == "(") - (char == ")")
        i += 1
        if depth == 0:
            return i
    raise ValueError(f"unbalanced '(' in the vercel.json source {source!r}")


def compile_source(source: str) -> re.Pattern[str]:
    r"""Translate Vercel's path-to-regexp source (':name', ':name*', '(regex)', '\x') into a regex."""
    out: list[str] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "\\" and i + 1 < len(source):
            out.append(re.escape(source[i + 1]))
            i += 2
        elif char == "(":
            end = _group(source, i)
            if end < len(source) and source[end] in "*+?":
                raise ValueError(f"a modifier after a group is not supported here: {source!r}")
            out.append(source[i:end])  # a regex group, lookaheads included, kept as written
            i = end
        elif char == "{":
            raise ValueError(f"'{{...}}' groups are not supported here: {source!r}")
        elif (match := _NAME.match(source, i)) is not None:
            name, mod = match["name"], match["mod"]
            if mod in ("*", "+"):
                # '/:path*' also matches the bare prefix, as in path-to-regexp.
                if out and out[-1] == "/":
                    out.pop()
                out.append(f"(?:/(?P<{name}>[^?#]*))?" if mod == "*" else f"/(?P<{name}>.+)")
            else:
                out.append(f"(?P<{name}>[^/]+){'?' if mod == '?' else ''}")
            i = match.end()
        else:
            out.append(re.escape(char))
            i += 1
    return re.compile("".join(out) + "$")


def _config(vercel_json: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(vercel_json.read_text())
    return config


def load_rewrites(vercel_json: Path) -> list[Rewrite]:
    """Read vercel.json's rewrites in order."""
    return [
        Rewrite(item["source"], compile_source(item["source"]), item["destination"])
        for item in _config(vercel_json).get("rewrites", [])
    ]


def load_header_rules(vercel_json: Path) -> list[HeaderRule]:
    """Read vercel.json's `headers` entries in order (conditions, `has`/`missing`, are not supported)."""
    items = _config(vercel_json).get("headers", [])
    for item in items:
        if "has" in item or "missing" in item:
            raise ValueError(f"the dev server does not apply has/missing conditions: {item['source']!r}")
    return [
        HeaderRule(
            item["source"],
            compile_source(item["source"]),
            tuple((header["key"], header["value"]) for header in item["headers"]),
        )
        for item in items
    ]


def resolve(rewrites: list[Rewrite], path: str) -> Rewrite | None:
    """The first rewrite whose source matches the path, as Vercel applies them."""
    for rewrite in rewrites:
        if rewrite.pattern.match(path):
            return rewrite
    return None


def headers_for(rules: list[HeaderRule], path: str) -> dict[str, str]:
    """The headers of every rule matching the path (names lower-cased); a later rule wins, as on Vercel."""
    headers: dict[str, str] = {}
    for rule in rules:
        if rule.pattern.match(path):
            headers.update((key.lower(), value) for key, value in rule.headers)
    return headers
