"""Handlers return their effects as values (issue 13 step 2).

A reply is an ``Effects`` value a handler returns; nothing collects it on the side. So a
call whose result is dropped (``ctx.answer(...)`` as a statement, or ``await decide(...)``
without ``return``) silently loses a reply: the scan below refuses any such statement in
``bot/``.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.context import Context
from bot.domain import (
    NO_EFFECTS,
    WAKE_DISPATCHER,
    ChatRef,
    Effects,
    Notify,
    Outgoing,
    Reply,
)
from bot.handlers import operator
from tests.harness import ROOT, TestBot

# Values that carry effects: dropping one of them drops replies.
CARRIERS = ("Effects", "Submitted", "Ending")


def _sources() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted((ROOT / "bot").rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def _carries_effects(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    returned = "" if node.returns is None else ast.unparse(node.returns)
    return any(carrier in returned for carrier in CARRIERS)


@dataclasses.dataclass
class Producers:
    """What returns effects, by how it is called."""

    functions: set[str] = dataclasses.field(default_factory=set)  # module level: f(…)
    methods: dict[str, set[str]] = dataclasses.field(default_factory=dict)  # class → names
    other: set[str] = dataclasses.field(default_factory=set)  # defs returning anything else

    def add(self, module: ast.Module) -> None:
        for node in module.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _carries_effects(node):
                self.functions.add(node.name)
        for node in ast.walk(module):
            if isinstance(node, ast.ClassDef):
                self.methods.setdefault(node.name, set()).update(
                    item.name for item in node.body
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef)
                    and _carries_effects(item))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) \
                    and not _carries_effects(node):
                self.other.add(node.name)

    def any_named(self, name: str) -> bool:
        return name in self.functions or any(name in names for names in self.methods.values())


def producers_of(modules: list[ast.Module]) -> Producers:
    producers = Producers()
    for module in modules:
        producers.add(module)
    return producers


def _call(node: ast.expr) -> ast.Call | None:
    if isinstance(node, ast.Await):
        node = node.value
    return node if isinstance(node, ast.Call) else None


def _drops(call: ast.Call, cls: str | None, producers: Producers) -> str | None:
    """The callee's name if this call's result carries effects, as far as names tell:
    a module-level producer ``f(…)``, ``ctx.answer(…)`` and the other Context
    constructors, ``self.m(…)`` of a producer of the enclosing class, or a call given
    ``ctx`` first (a handler, a step, a flow's ``begin``) unless all its namesakes in
    ``bot/`` return something else (``move_to``, ``ctx.audit``…)."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else \
        func.attr if isinstance(func, ast.Attribute) else None
    if name is None:
        return None
    if isinstance(func, ast.Name) and name in producers.functions:
        return name
    receiver = func.value.id if isinstance(func, ast.Attribute) and isinstance(
        func.value, ast.Name) else None
    if receiver == "ctx" and name in producers.methods.get("Context", set()):
        return name
    if receiver == "self" and cls is not None and name in producers.methods.get(cls, set()):
        return name
    first = call.args[0] if call.args else None
    if isinstance(first, ast.Name) and first.id == "ctx" and (
            producers.any_named(name) or name not in producers.other):
        return name
    return None


def dropped_effects(module: ast.Module, producers: Producers) -> list[tuple[int, str]]:
    """(line, name) of each statement that calls an effect producer and drops the result."""
    found: list[tuple[int, str]] = []

    def visit(node: ast.AST, cls: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.ClassDef) else cls
            if isinstance(child, ast.Expr) and (call := _call(child.value)) is not None \
                    and (name := _drops(call, cls, producers)) is not None:
                found.append((child.lineno, name))
            visit(child, inner)

    visit(module, None)
    return found


def test_no_effects_are_dropped_in_bot() -> None:
    sources = list(_sources())
    producers = producers_of([module for _, module in sources])
    assert {"decide", "submit", "tick"} <= producers.functions
    assert {"answer", "text", "message"} <= producers.methods["Context"]
    assert {"begin", "on_consent"} <= producers.methods["EnrollmentFlow"]
    dropped = [f"{path.relative_to(ROOT)}:{line} {name}(…)" for path, module in sources
               for line, name in dropped_effects(module, producers)]
    assert dropped == [], "a call's effects are dropped (missing return?):\n" + "\n".join(dropped)


def test_the_scan_finds_a_dropped_reply() -> None:
    """The guard above can fail: a forgotten ``return`` is seen, awaited or not."""
    module = ast.parse(
        "class Context:\n"
        "    def answer(self, key: str) -> Effects: ...\n"
        "    def note(self) -> None: ...\n"
        "class Flow:\n"
        "    async def ask(self, ctx) -> Effects: ...\n"
        "    async def step(self, ctx, answer) -> Effects:\n"
        "        self.ask(ctx)\n"
        "        ctx.note()\n"
        "        return NO_EFFECTS\n"
        "async def decide(ctx) -> Effects: ...\n"
        "async def handler(ctx, args) -> Effects:\n"
        "    if not args:\n"
        "        ctx.answer('usage')\n"
        "    await decide(ctx)\n"
        "    await command.handler(ctx, args)\n"
        "    effects = ctx.answer('kept')\n"
        "    query.answer()\n"
        "    return effects\n")
    assert dropped_effects(module, producers_of([module])) == [
        (7, "ask"), (13, "answer"), (14, "decide"), (15, "handler")]


def test_effects_are_values() -> None:
    reply = Reply(Outgoing("un"))
    notice = Notify(ChatRef("telegram", "1"), Outgoing("deux"))
    first, second = Effects.of(reply), Effects.of(notice)
    combined = first + second + WAKE_DISPATCHER
    assert combined == Effects((reply, notice), wake_dispatcher=True)
    assert first == Effects.of(reply)  # adding made a new value
    assert combined.replies() == (reply,)
    assert NO_EFFECTS + first == first and not (first + NO_EFFECTS).wake_dispatcher
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.wake_dispatcher = True  # type: ignore[misc]


async def test_a_handler_returns_its_replies_and_sends_nothing(bot: TestBot) -> None:
    """Called directly, a handler gives its replies back; nothing reaches a chat or the
    reply outbox until the core writes them."""
    services = bot.core.services
    incoming = bot._incoming("telegram:100", None, text="/alertes")
    ctx = await Context.of(services, incoming)
    effects = await operator.alerts(ctx, "")
    assert [reply.message.text for reply in effects.replies()] == [ctx.t("alerts.none")]
    assert await services.db.fetchval("SELECT count(*) FROM replies") == 0
    assert bot.inbox("telegram:100") == []
