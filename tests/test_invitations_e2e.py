"""Issue 17 end to end: an invitation's deep link on the Telegram double (``/start <token>``,
as Telegram sends it at « Démarrer ») and its ``!start <token>`` line on a real Synapse."""

from __future__ import annotations

import re

import pytest

from tests.test_matrix_e2e import (  # noqa: F401  (fixtures)
    Cast,
    RunningBot,
    bot,
    cast,
    number_of,
    open_dm,
    say,
)
from tests.test_telegram_e2e import (  # noqa: F401  (tg: a fixture)
    ADMIN,
    ALICE,
    BOB,
    BOT_NAME,
    Telegram,
    keyboard_rows,
    tg,
)

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


async def test_telegram_deep_link_enrolls_into_the_invited_community(
        tg: Telegram) -> None:  # noqa: F811
    created = await tg.say(ADMIN, "/invitation artisan Vesoul max 1 : Chambre de Métiers",
                           expect="Invitation n°1")
    link = re.search(rf"https://t\.me/{BOT_NAME}\?start=([A-Za-z0-9_-]{{32}})", created)
    assert link is not None, created
    token = link.group(1)
    welcome = await tg.say(ALICE, f"/start {token}", expect="Acceptez")
    assert "Invitation — Chambre de Métiers" in welcome
    await tg.press(ALICE, "J'accepte", expect="communautés")
    assert any("✅ Artisans" in label for row in keyboard_rows(tg.double.last_message(ALICE))
               for label in row)
    await tg.press(ALICE, "Valider ✔", expect="Communes retenues")
    await tg.press(ALICE, "Terminer ✔", expect="Récapitulatif")
    await tg.press(ALICE, "Confirmer", expect="C'est fait")
    assert await tg.profile(ALICE) == (["70550"], ["artisan"], "active")
    # Used up (max 1): refused with a clear message, and a forged token is refused too.
    assert "nombre maximal" in await tg.say(BOB, f"/start {token}", expect="invitation")
    assert "n'est pas reconnu" in await tg.say(BOB, "/start " + "A" * 32, expect="reconnu")


@pytest.mark.synapse
async def test_matrix_start_line_enrolls_into_the_invited_community(
        cast: Cast, bot: RunningBot) -> None:  # noqa: F811
    admin_room = await open_dm(cast, cast.admin)
    created = await say(cast, cast.admin, admin_room, "!invitation elu Vesoul : Préfecture",
                        "Invitation n°1")
    line = re.search(r"envoyez « (!start [A-Za-z0-9_-]{32}) »", created)
    assert line is not None, created
    assert f"https://matrix.to/#/{cast.bot.user_id}" in created
    room = await open_dm(cast, cast.citizen)
    welcome = await say(cast, cast.citizen, room, line.group(1), "Acceptez-vous")
    assert "Invitation — Préfecture" in welcome
    selection = await say(cast, cast.citizen, room, number_of(welcome, "J'accepte"),
                          "Quelles communautés")
    assert "✅ Élus" in selection
    await say(cast, cast.citizen, room, "valider", "Communes retenues")
    summary = await say(cast, cast.citizen, room, "terminer", "Confirmez-vous")
    await say(cast, cast.citizen, room, number_of(summary, "Confirmer"), "C'est fait")
    subscriber = await bot.services.stores.subscribers.get("matrix", cast.citizen.user_id)
    assert subscriber is not None
    profile = await bot.services.stores.subscribers.profile(subscriber)
    assert profile.communities == ["elu"] and profile.communes == ["70550"]
    revoked = await say(cast, cast.admin, admin_room, "!invitation revoquer 1", "révoquée")
    assert "révoquée" in revoked
    other = await open_dm(cast, cast.neighbour)
    assert "retirée" in await say(cast, cast.neighbour, other, line.group(1), "retirée")
