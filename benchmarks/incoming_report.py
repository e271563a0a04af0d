"""The incoming-path scenarios (issue 14) as ``make bench`` rows: each runs one scenario of
``benchmarks/incoming.py`` (or ``benchmarks/matrix_incoming.py``) and turns its outcome into
target rows (measured, target, met) and plot panels."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import incoming, plot

if TYPE_CHECKING:  # __main__ imports this module
    from benchmarks.__main__ import Run

SPIKE_RATE = 300.0  # updates/s, loopback and 20 ms alike
STAFF_DELAY = 0.5  # s: /valider → acknowledged, and → first copy
REPLY_P99 = 1.0  # s, at human pace during a broadcast
RECEIPT_P99 = 0.100  # s
CEILING_USE = 0.99
RSS_PER_2000 = 1.0  # MB


def where(latency: float) -> str:
    return "loopback" if not latency else f"{latency * 1000:.0f} ms per call"


def suffix(latency: float) -> str:
    return "" if not latency else f"_{latency * 1000:.0f}ms"


def seconds(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:g} s"


def _cpu_per_update(outcome: dict[str, Any], wave: dict[str, Any]) -> str:
    """The bot's own CPU per update: unlike updates/s, it does not depend on what else
    shares the machine's two cores (the double and the 2,000 people run beside the bot)."""
    updates = max(wave["answers"], 1)
    per_update_ms = outcome["bot_cpu_s"] * 1000 / updates
    alone = 1000 / per_update_ms if per_update_ms else math.inf
    return (f"bot CPU {per_update_ms:.2f} ms/update (on a core of its own: "
            f"{alone:,.0f} updates/s)")


def _ended(wave: dict[str, Any]) -> str:
    ended = wave["ended_by"]
    return "all done" if ended == "completed" else f"run stopped: {ended}"


async def spike(run: Run, folder: Path, latency: float) -> None:
    sizes = run.sizes
    plan = incoming.SpikePlan(
        people=sizes.spike_people, seeded=sizes.spike_seeded, valider_at=sizes.spike_valider_at,
        second_wave=0 if latency else sizes.spike_second_wave, latency=latency,
        deadline=sizes.spike_deadline)
    outcome = await incoming.spike(folder / f"spike{suffix(latency)}", plan)
    run.details[f"incoming_spike{suffix(latency)}"] = outcome
    wave, n = outcome["wave"], plan.people
    run.target(f"Incoming spike, {n:,} people enrolling at once (closed loop), {where(latency)}:"
               f" updates/s", f"≥ {SPIKE_RATE:.0f}",
               f"{wave['updates_per_s']} updates/s; reply p50 {seconds(wave['latency_p50_s'])},"
               f" p99 {seconds(wave['latency_p99_s'])}",
               wave["updates_per_s"] >= SPIKE_RATE and wave["ended_by"] == "completed",
               f"{wave['answers']:,} answers in {wave['duration_s']} s ({_ended(wave)}); "
               f"paid ceiling; 429: {outcome['count_429']}; {_cpu_per_update(outcome, wave)}")
    run.target("… half-enrolled people at the end", "0", wave["half_enrolled"],
               wave["half_enrolled"] == 0,
               f"{wave['finished']:,}/{n:,} finished; when the run stopped "
               f"{wave['waiting_at_end']:,} waited for an answer, {wave['pending_at_end']:,} "
               f"updates unread (deadline {plan.deadline:g} s)")
    valider = outcome["valider"]
    acknowledged, first = valider["acknowledged_s"], valider["first_copy_s"]
    run.target(f"… an officer's /valider {plan.valider_at:g} s into the spike: acknowledged, "
               "first alert copy", f"≤ {STAFF_DELAY} s",
               f"acknowledged {seconds(acknowledged)}, first copy {seconds(first)}",
               acknowledged <= STAFF_DELAY and first <= STAFF_DELAY,
               f"from the /valider entering the double; the alert goes to {plan.seeded:,} "
               "existing subscribers")
    memory = outcome.get("memory")
    if memory is not None:
        growth = memory["growth_per_2000_mb"]
        run.target("RSS growth per 2,000 new people after the first wave", f"≤ {RSS_PER_2000:g} MB",
                   f"{growth} MB", growth <= RSS_PER_2000,
                   f"bot VmRSS {memory['rss_before_mb']} → {memory['rss_after_mb']} MB across "
                   f"{memory['people']:,} more enrollments (closed loop, loopback; "
                   f"{_ended(memory['wave'])})")
    run.panels.append(plot.Panel(
        f"Enrollment spike, {n:,} people at once (closed loop), {where(latency)}: answers/s",
        {"answers to people": wave["answers_per_second"]}, None))


async def human_pace(run: Run, folder: Path, latency: float) -> None:
    sizes = run.sizes
    plan = incoming.HumanPlan(people=sizes.human_people, arrival=sizes.human_arrival,
                              pause=sizes.human_pause, subscribers=sizes.human_subscribers,
                              approve_at=sizes.human_approve_at, latency=latency)
    outcome = await incoming.human_pace(folder / f"human{suffix(latency)}", plan)
    run.details[f"incoming_human{suffix(latency)}"] = outcome
    wave, budget = outcome["wave"], outcome["broadcast"]
    everyone = wave["waiting_at_end"] == 0 and wave["half_enrolled"] == 0
    run.target(f"Human pace: {plan.people:,} people arriving over {plan.arrival:g} s, "
               f"{plan.pause:g} s between steps, during a {plan.subscribers:,}-recipient "
               f"broadcast, {where(latency)}: reply p99", f"≤ {REPLY_P99:g} s",
               f"{seconds(wave['latency_p99_s'])} (during the broadcast "
               f"{seconds(wave['during_broadcast_p99_s'])}; p50 {seconds(wave['latency_p50_s'])})",
               wave["latency_p99_s"] <= REPLY_P99 and everyone,
               f"{wave['finished']:,}/{plan.people:,} enrolled, {wave['waiting_at_end']:,} "
               f"left waiting ({_ended(wave)}); approval {plan.approve_at:g} s after the first "
               "arrival")
    _budget_rows(run, budget, outcome["count_429"])
    run.panels.append(plot.Panel(
        f"Human pace, {plan.people:,} people over {plan.arrival:g} s + {plan.subscribers:,} "
        f"broadcast, {where(latency)}", {"alert copies": budget["per_second_copies"],
                                        "other messages": budget["per_second_replies"]}, 1000))


def _budget_rows(run: Run, budget: dict[str, Any], count_429: int) -> None:
    run.target("… broadcast rate / ceiling", f"≥ {CEILING_USE:g}", budget["use"],
               budget["use"] >= CEILING_USE,
               f"(copies {budget['copies_per_s']} + other messages {budget['replies_per_s']})"
               f" per s / 1,000, over the broadcast's {budget['seconds']} whole seconds: "
               "replies share the budget")
    run.target("… 429 answers", "0", count_429, count_429 == 0, "double's counters, whole run")


async def receipts(run: Run, folder: Path, latency: float) -> None:
    sizes = run.sizes
    plan = incoming.ReceiptsPlan(subscribers=sizes.receipts_subscribers,
                                 delay=sizes.receipts_delay, after=sizes.receipts_after,
                                 latency=latency)
    outcome = await incoming.receipts(folder / f"receipts{suffix(latency)}", plan)
    run.details[f"incoming_receipts{suffix(latency)}"] = outcome
    budget = outcome["broadcast"]
    during = outcome["during_p99_s"]
    run.target(f"{plan.share:.0%} of {plan.subscribers:,} recipients press « Reçu » "
               f"{plan.delay[0]:g}–{plan.delay[1]:g} s after their copy, {where(latency)}: "
               "acknowledgement p99", f"≤ {RECEIPT_P99 * 1000:.0f} ms",
               f"{_ms(during)} during the broadcast ({outcome['during']:,} presses), "
               f"{_ms(outcome['after_p99_s'])} after ({outcome['after']:,})",
               during <= RECEIPT_P99,
               f"press → « réception notée » accepted by the double; presses watched until "
               f"{plan.after:g} s after the last copy")
    _budget_rows(run, budget, outcome["count_429"])
    run.target("… receipts lost", "0",
               f"{outcome['lost']} not recorded, {outcome['unanswered']} unanswered, of "
               f"{outcome['pressed']:,}", outcome["lost"] == 0 and outcome["unanswered"] == 0,
               f"recorded: deliveries.acknowledged_at in the bot's database, up to "
               f"{plan.drain:g} s after the last press; then {outcome['unread_at_end']:,} "
               "updates were still unread by the bot")
    run.panels.append(plot.Panel(
        f"« Reçu » pressed by {plan.share:.0%} during a {plan.subscribers:,} broadcast, "
        f"{where(latency)}", {"alert copies": budget["per_second_copies"],
                              "other messages": budget["per_second_replies"]}, 1000))


def _ms(value: float) -> str:
    if math.isinf(value):
        return "unanswered"  # more than 1 % of the presses had no answer at all
    return "n/a" if math.isnan(value) else f"{value * 1000:.0f} ms"


async def free_tier(run: Run, folder: Path, latency: float) -> None:
    sizes = run.sizes
    people, rate = sizes.free_people, 30.0
    minimum = incoming.least_time(people, rate)
    plan = incoming.SpikePlan(people=people, seeded=0, valider_at=-1, second_wave=0, rate=rate,
                              paid=False, latency=latency, deadline=2 * minimum + 60)
    outcome = await incoming.spike(folder / f"free{suffix(latency)}", plan)
    run.details[f"incoming_free{suffix(latency)}"] = outcome
    wave, count = outcome["wave"], outcome["count_429"]
    run.target(f"Free tier (30 msg/s): {people:,} people enrolling at once, {where(latency)}: "
               "stranded, 429 answers", "0, 0", f"{wave['half_enrolled']} stranded, {count} × 429",
               wave["half_enrolled"] == 0 and count == 0 and wave["ended_by"] == "completed",
               f"{wave['finished']:,}/{people:,} finished ({_ended(wave)}); "
               f"429 by scope {outcome['rate_limited']}")
    run.target("… time until everyone is enrolled", f"(≥ {minimum:.0f} s: the budget)",
               f"{wave['duration_s']} s" if wave["ended_by"] == "completed" else
               f"unfinished after {wave['duration_s']} s", None,
               f"{wave['answers']:,} answers; reply p50 {seconds(wave['latency_p50_s'])}, "
               f"p99 {seconds(wave['latency_p99_s'])}")


async def matrix(run: Run) -> None:
    from benchmarks import matrix_incoming  # imports the Synapse harness

    sizes = run.sizes
    plan = matrix_incoming.MatrixPlan(people=sizes.matrix_people,
                                      valider_at=sizes.matrix_valider_at)
    outcome = await matrix_incoming.spike(plan)
    run.details["incoming_matrix"] = outcome
    bot, bare = outcome["bot"]["wave"], outcome["bare"]["wave"]
    ratio = outcome["ratio_updates"]
    run.target(f"Matrix: {plan.people} people enrolling at once (closed loop): updates/s, bot / "
               "bare nio client", "(≥ 0.9, as the fan-out)",
               f"{ratio} ({bot['updates_per_s']} vs {bare['updates_per_s']}/s)", ratio >= 0.9,
               f"reply p50 {seconds(bot['latency_p50_s'])}, p99 {seconds(bot['latency_p99_s'])}"
               f" (bare {seconds(bare['latency_p50_s'])}, {seconds(bare['latency_p99_s'])}); "
               f"bot {_ended(bot)}, bare {_ended(bare)}")
    run.target("… half-enrolled people at the end", "0", bot["half_enrolled"],
               bot["half_enrolled"] == 0,
               f"{bot['finished']}/{plan.people} finished; {bot['waiting_at_end']} waited for an"
               " answer when the run stopped")
    acknowledged, first = outcome["bot"]["acknowledged_s"], outcome["bot"]["first_copy_s"]
    run.target(f"… an officer's !valider {plan.valider_at:g} s into the spike: acknowledged, "
               "first alert copy", f"≤ {STAFF_DELAY} s",
               f"acknowledged {seconds(acknowledged)}, first copy {seconds(first)}",
               acknowledged <= STAFF_DELAY and first <= STAFF_DELAY,
               f"Synapse's timestamps; the alert goes to {plan.seeded} subscriber rooms; the "
               f"bare client answers a message in {seconds(bare['latency_p50_s'])} (p50) "
               "under the same spike")
