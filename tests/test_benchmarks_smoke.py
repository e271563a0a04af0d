"""Every benchmark (benchmarks/, ``make bench``) at toy sizes, so that none can rot.

They assert what the benchmarks check for correctness - everyone served, nobody lost, the
report agreeing with the Bot API double, duplicates bounded - and the shape of the results;
never timings, which mean nothing at these sizes. The bot runs as in the benchmarks: its own
process (``run_bot.py``) against the double.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from PIL import Image

from benchmarks import command_during_exports, core, plot, telegram, valider_during_maps
from benchmarks.__main__ import main as bench_main
from benchmarks.botproc import subscriber_chat
from tests.synapse.server import SynapseServer

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


async def test_core_benchmarks_resolve_and_dispatch_everyone() -> None:
    assert {row["case"] for row in core.perimeter_parsing(repeat=1)} >= {"Vesoul", "dep:70"}
    [alone] = await core.resolution(300)
    assert alone["rows"] == 300 and alone["chunks"] == 0  # all within the approval's slice
    resolution, dispatch = await core.resolution_and_dispatch(300)
    assert dispatch["case"] == "300 deliveries" and resolution["seconds"] >= 0


async def test_commands_during_files_for_others_are_answered() -> None:
    """benchmarks/valider_during_maps.py and command_during_exports.py: each run checks the
    officer's answer and waits for every file."""
    runs = [await valider_during_maps.one_run(2),
            await command_during_exports.one_run("cap", 2),
            await command_during_exports.one_run("mesdonnees", 1)]
    assert all(min(dataclasses.astuple(run)) > 0 for run in runs)


async def test_paid_broadcast_serves_each_subscriber_once(tmp_path: Path) -> None:
    result = await telegram.ceiling(tmp_path, 300, 1000.0, paid=True)
    assert result.delivered == 300 and result.duplicates() == 0
    assert set(result.per_chat) == {subscriber_chat(n) for n in range(1, 301)}
    assert result.report_counts() == {"sent": 300, "failed": 0, "blocked": 0, "total": 300,
                                      "possible_duplicates": 0}
    summary = result.summary()
    assert summary["count_429"] == 0 and summary["resolved_s"] is not None
    assert summary["peak_rss_mb"] > 0 and summary["bot_cpu_s"] > 0
    assert sum(summary["per_second"]) == 300


async def test_naive_baselines_send_everything(tmp_path: Path) -> None:
    for mode in ("loop", "gather"):
        outcome = await telegram.naive_baseline(120, mode)
        assert (outcome["delivered"], outcome["errors"], outcome["count_429"]) == (120, 0, 0)
    slow = await telegram.naive_baseline(10, "loop", latency=0.02)
    assert slow["delivered"] == 10 and slow["seconds"] >= 10 * 0.02


async def test_faults_leave_nobody_reachable_unserved_and_the_report_exact(
        tmp_path: Path) -> None:
    outcome = await telegram.with_faults(tmp_path, 300, rate=100)  # faults land mid-way
    assert outcome["lost"] == 0 and outcome["exact"], outcome
    assert outcome["report"]["blocked"] == outcome["count_403"] == 6
    assert outcome["count_429"] >= 5 and outcome["count_502"] == 20
    assert outcome["duplicates"] == 0


async def test_kill_minus_9_loses_nobody_and_reports_bounded_duplicates(
        tmp_path: Path) -> None:
    outcome = await telegram.crash_and_resume(tmp_path, 400, in_flight=16, rate=100)
    assert outcome["lost"] == 0
    assert outcome["report"]["sent"] == outcome["report"]["total"] == 400
    assert 0 < outcome["reported_duplicates"] <= outcome["bound"] == 32
    assert outcome["duplicates"] <= outcome["reported_duplicates"]


def test_make_bench_writes_json_markdown_and_plot(tmp_path: Path) -> None:
    assert bench_main(["--smoke", "--only", "telegram-30", "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "smoke.json").read_text())
    assert document["meta"]["cores"] and not document["errors"]
    t30 = document["details"]["telegram_30"]
    assert t30["delivered"] == 60 and t30["count_429"] == 0
    assert [row["met"] for row in document["targets"]] == ["n/a (smoke)"] * 2
    assert "| Telegram 30 msg/s" in (tmp_path / "smoke.md").read_text()
    with Image.open(tmp_path / "smoke.png") as image:
        assert image.format == "PNG" and image.width == plot.WIDTH


def test_plot_draws_several_series_and_empty_ones(tmp_path: Path) -> None:
    panels = [plot.Panel("a", {"bot": [1000, 1000, 998], "naive": [900, 950]}, 1000),
              plot.Panel("b", {"bot": [30]}, 30), plot.Panel("c", {"nothing": []})]
    plot.render(panels, tmp_path / "p.png", "title")
    with Image.open(tmp_path / "p.png") as image:
        assert image.height == 40 + 3 * plot.PANEL_HEIGHT


@pytest.mark.synapse
async def test_matrix_fan_out_reaches_every_room(synapse: SynapseServer) -> None:
    from benchmarks import matrix

    result = await matrix.fan_out(12, 1, server=synapse, prefix="smoke")
    assert result.bot_sent == [12] and set(result.bare_sent) == {12}
    assert "12 envoyés, 0 échec, 0 bloqué sur 12" in result.reports[0]
    summary = result.summary()
    assert summary["ratio"] > 0 and summary["ratio_same_event"] > 0


def test_incoming_scenarios_enroll_everyone_and_write_their_rows(tmp_path: Path) -> None:
    """Issue 14's scenarios at toy sizes through ``make bench``'s entry point: every person
    enrolled (7 answers each, none unexpected), the officer answered and the alert sent,
    every receipt pressed recorded and answered, and a row per figure."""
    only = ["incoming-spike", "incoming-human", "incoming-receipts", "incoming-free"]
    assert bench_main(["--smoke", "--only", *only, "--out", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "smoke.json").read_text())
    assert not document["errors"], document["errors"]
    details = document["details"]
    spike = details["incoming_spike"]
    waves = [spike["wave"], spike["memory"]["wave"], details["incoming_human"]["wave"],
             details["incoming_free"]["wave"]]
    for wave in waves:
        assert wave["ended_by"] == "completed" and wave["finished"] == wave["people"], wave
        assert wave["answers"] == wave["updates"] == 7 * wave["people"]
        assert (wave["half_enrolled"], wave["wrong_answers"], wave["waiting_at_end"]) == (0, 0, 0)
        assert sum(wave["answers_per_second"]) == wave["answers"]
    assert [wave["people"] for wave in waves] == [12, 6, 12, 8]
    valider = spike["valider"]
    assert valider["acknowledged_s"] > 0 and valider["first_copy_s"] > 0  # not NaN: both came
    assert spike["memory"]["rss_after_mb"] > 0
    human = details["incoming_human"]
    assert human["report"] and human["broadcast"]["copies"] == 200
    receipts = details["incoming_receipts"]
    assert receipts["pressed"] == receipts["noted"] == 60  # 20 % of 300, all within the run
    assert (receipts["lost"], receipts["unanswered"], receipts["unread_at_end"]) == (0, 0, 0)
    assert receipts["broadcast"]["copies"] == 300
    rows = document["targets"]
    assert len(rows) == 4 + 3 + 4 + 2 and {row["met"] for row in rows} == {"n/a (smoke)"}
    assert all(row["measured"] != "" and row["target"] for row in rows)
    text = (tmp_path / "smoke.md").read_text()
    assert text.startswith(f"Machine: {document['meta']['cores']} cores")
    assert "| Incoming spike, 12 people enrolling at once" in text
    assert "| Free tier (30 msg/s): 8 people enrolling at once" in text


@pytest.mark.synapse
async def test_matrix_incoming_spike_enrolls_everyone_and_the_bare_client_answers_all(
        synapse: SynapseServer) -> None:
    from benchmarks import matrix_incoming

    plan = matrix_incoming.MatrixPlan(people=3, seeded=2, valider_at=0.2, deadline=60.0)
    outcome = await matrix_incoming.spike(plan, server=synapse, prefix="smokein")
    bot, bare = outcome["bot"]["wave"], outcome["bare"]["wave"]
    for wave in (bot, bare):
        assert wave["ended_by"] == "completed" and wave["finished"] == 3, wave
        assert wave["answers"] == wave["updates"] == 21 and wave["wrong_answers"] == 0
    assert bot["half_enrolled"] == 0
    assert outcome["bot"]["acknowledged_s"] > 0 and outcome["bot"]["first_copy_s"] > 0
    assert outcome["ratio_updates"] > 0
