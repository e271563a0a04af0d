"""Subscriber conversations and direct commands, one line per exchange."""

from __future__ import annotations

from tests.harness import TestBot

ALICE = "telegram:1"


async def profile_of(bot: TestBot, who: str = ALICE) -> tuple[list[str], list[str], str]:
    platform, user_id = who.split(":", 1)
    stores = bot.core.services.stores
    subscriber = await stores.subscribers.get(platform, user_id)
    assert subscriber is not None
    profile = await stores.subscribers.profile(subscriber)
    return profile.communes, profile.communities, subscriber.status


async def test_enrollment_by_buttons(bot: TestBot) -> None:
    assert "Confidentialité" in await bot.say(ALICE, "/start")
    assert "communautés" in await bot.press(ALICE, "accepte")
    await bot.press(ALICE, "Commerçants")
    assert bot.choice_data(ALICE, "✅ Commerçants")
    await bot.press(ALICE, "Agriculteurs")
    assert "Commerçants, Agriculteurs" in bot.inbox(ALICE)[-1]
    assert "communes" in await bot.press(ALICE, "Valider")
    reply = await bot.say(ALICE, "Vesoul, 70100")
    assert "✔ Vesoul — 70000" in reply and "70100 couvre" in reply
    await bot.press(ALICE, "Gray — 70100")
    assert "Récapitulatif" in await bot.press(ALICE, "Terminer")
    assert "C'est fait" in await bot.press(ALICE, "Confirmer")
    communes, communities, status = await profile_of(bot)
    assert communes == ["70279", "70550"]  # Gray (70100), Vesoul
    assert communities == ["agriculteur", "commercant"]
    assert status == "active"


async def test_refusing_consent_stores_nothing(bot: TestBot) -> None:
    await bot.say(ALICE, "/start")
    assert "aucune donnée" in await bot.press(ALICE, "refuse")
    assert await bot.core.services.db.fetchval("SELECT count(*) FROM subscribers") == 0
    assert await bot.core.services.db.fetchval("SELECT count(*) FROM conversations") == 0


async def test_enrollment_asks_for_at_least_one_community_and_commune(bot: TestBot) -> None:
    await bot.say(ALICE, "/start")
    await bot.say(ALICE, "oui")
    assert "au moins une communauté" in await bot.say(ALICE, "valider")
    assert "inconnue" in await bot.say(ALICE, "boulangers")
    await bot.say(ALICE, "citoyen")
    await bot.say(ALICE, "valider")
    assert "au moins une commune" in await bot.say(ALICE, "terminer")


async def test_enrollment_ambiguous_postal_code_and_typo(bot: TestBot) -> None:
    await bot.say(ALICE, "/start")
    await bot.say(ALICE, "oui")
    await bot.say(ALICE, "citoyen")
    await bot.say(ALICE, "valider")
    reply = await bot.say(ALICE, "70000")
    assert "couvre" in reply and "Laquelle ?" in reply
    await bot.press(ALICE, "Navenne")
    reply = await bot.say(ALICE, "Vesou")
    assert "introuvable" in reply
    await bot.press(ALICE, "Vesoul")
    assert "Navenne" in bot.inbox(ALICE)[-1] and "Vesoul" in bot.inbox(ALICE)[-1]


async def test_enrollment_by_location(bot: TestBot) -> None:
    await bot.say(ALICE, "/start")
    await bot.say(ALICE, "oui")
    await bot.say(ALICE, "equide")
    await bot.say(ALICE, "valider")
    assert "Vesoul — 70000" in await bot.share_location(ALICE, 47.6236, 6.1550)
    outside = await bot.share_location(ALICE, 48.85, 2.35)
    assert "aucune commune couverte" in outside and "Vesoul — 70000" in outside


async def test_conversation_survives_a_restart(bot: TestBot) -> None:
    await bot.say(ALICE, "/start")
    await bot.say(ALICE, "oui")
    await bot.say(ALICE, "elu")
    await bot.restart()
    assert "communes" in await bot.say(ALICE, "valider")
    await bot.say(ALICE, "Gray")
    await bot.say(ALICE, "terminer")
    assert "C'est fait" in await bot.say(ALICE, "oui")


async def test_old_button_is_refused_after_the_step_moved_on(bot: TestBot) -> None:
    await bot.say(ALICE, "/start")
    stale = bot.choice_data(ALICE, "accepte")
    await bot.press(ALICE, "accepte")
    assert "n'est plus valable" in await bot.press_data(ALICE, stale)
    assert "n'est plus valable" in await bot.press_data(ALICE, "c:forged:yes")
    assert "n'est plus valable" in await bot.press_data(ALICE, "garbage")


def forged(bot: TestBot, who: str, value: str) -> str:
    """A button carrying the current step's nonce but a value the bot never offered."""
    nonce = bot.choice_data(who, "").split(":")[1]
    return f"c:{nonce}:{value}"


async def test_forged_community_with_a_valid_nonce_is_refused(bot: TestBot) -> None:
    await bot.say(ALICE, "/start")
    await bot.press(ALICE, "accepte")
    reply = await bot.press_data(ALICE, forged(bot, ALICE, "t:<b>pirate</b>"))
    assert "n'est plus valable" in reply
    await bot.press(ALICE, "Commerçants")
    await bot.press(ALICE, "Valider")
    await bot.say(ALICE, "Vesoul")
    await bot.say(ALICE, "terminer")
    await bot.say(ALICE, "oui")
    assert (await profile_of(bot))[1] == ["commercant"]
    stats = await bot.say("telegram:200", "/stats", chat="officers")
    assert "pirate" not in stats


async def test_forged_commune_with_a_valid_nonce_is_refused(bot: TestBot) -> None:
    await bot.say(ALICE, "/start")
    await bot.press(ALICE, "accepte")
    await bot.press(ALICE, "Commerçants")
    await bot.press(ALICE, "Valider")
    await bot.say(ALICE, "70100")  # offers Gray and another commune to choose from
    for value in ("add:99999", "add:<script>", "add:70550"):  # 70550 exists, was not offered
        assert "n'est plus valable" in await bot.press_data(ALICE, forged(bot, ALICE, value))
    assert "Gray — 70100" in await bot.press(ALICE, "Gray — 70100")  # what was offered works
    await bot.say(ALICE, "terminer")
    await bot.say(ALICE, "oui")
    assert (await profile_of(bot))[0] == ["70279"]


async def test_abandoned_conversation_times_out_politely(bot: TestBot) -> None:
    await bot.say(ALICE, "/start")
    bot.advance(minutes=31)
    assert await bot.core.core.expire_conversations() == 1
    assert "Inscription interrompue" in bot.inbox(ALICE)[-1]
    assert "Je n'ai pas compris" in await bot.say(ALICE, "oui")


async def test_expired_conversation_answered_before_the_sweep(bot: TestBot) -> None:
    await bot.say(ALICE, "/start")
    bot.advance(minutes=45)
    assert "expiré" in await bot.say(ALICE, "oui")


async def test_direct_commune_commands(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    assert "Vesoul — 70000" in await bot.say(ALICE, "/communes")
    assert "Gray" in await bot.say(ALICE, "/communes +Gray")
    assert (await profile_of(bot))[0] == ["70279", "70550"]
    await bot.say(ALICE, "/communes -Vesoul")
    assert (await profile_of(bot))[0] == ["70279"]
    await bot.say(ALICE, "/communes Vesoul, Lure")
    assert (await profile_of(bot))[0] == ["70310", "70550"]
    assert "au moins une commune" in await bot.say(ALICE, "/communes -Vesoul, Lure")


async def test_commune_typo_changes_nothing(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    reply = await bot.say(ALICE, "/communes Gray, Vesouk")
    assert "introuvable" in reply and "Rien n'a été modifié" in reply
    assert "Vouliez-vous dire : Vesoul — 70000" in reply and "70550" not in reply
    assert (await profile_of(bot))[0] == ["70550"]


async def test_profile_pause_resume_language(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    assert "actif" in await bot.say(ALICE, "/profil")
    # Élus is vetted (issue 17): it takes a request, the rest is applied.
    changed = await bot.say(ALICE, "/profil agriculteurs, artisans, élus")
    assert "Agriculteurs" in changed and "/rejoindre elu" in changed
    assert (await profile_of(bot))[1] == ["agriculteur", "artisan"]
    assert "inconnue" in await bot.say(ALICE, "/profil pilotes")
    assert (await profile_of(bot))[1] == ["agriculteur", "artisan"]
    await bot.say(ALICE, "/pause")
    assert (await profile_of(bot))[2] == "paused"
    assert "/reprise" in await bot.say(ALICE, "/start")
    await bot.say(ALICE, "/reprise")
    assert (await profile_of(bot))[2] == "active"
    assert "English" in await bot.say(ALICE, "/langue en")
    assert "Your communes" in await bot.say(ALICE, "/communes")
    assert "Usage" in await bot.say(ALICE, "/langue de")


async def test_stop_asks_confirmation_then_erases(bot: TestBot) -> None:
    await bot.enroll(ALICE, "commercant", "Vesoul")
    await bot.say(ALICE, "/stop")
    assert "restez inscrit" in await bot.press(ALICE, "Non")
    await bot.say(ALICE, "/stop")
    assert "désinscrit" in await bot.press(ALICE, "Oui")
    db = bot.core.services.db
    assert await db.fetchval("SELECT count(*) FROM subscribers") == 0
    assert await db.fetchval("SELECT count(*) FROM subscriber_communes") == 0


async def test_commands_need_enrollment(bot: TestBot) -> None:
    for command in ("/communes", "/profil", "/pause", "/reprise", "/stop"):
        assert "pas encore inscrit" in await bot.say(ALICE, command)


async def test_help_shows_only_what_the_role_may_do(bot: TestBot) -> None:
    subscriber_help = await bot.say(ALICE, "/aide")
    assert "/communes" in subscriber_help and "/alerte" not in subscriber_help
    operator_help = await bot.say("telegram:100", "/aide")
    assert "/alerte" in operator_help and "/valider" in operator_help
    admin_help = await bot.say("telegram:900", "/aide")
    assert "/groupe" in admin_help and "/alerte " not in admin_help


async def test_unknown_input(bot: TestBot) -> None:
    assert "Commande inconnue : /bonjour" in await bot.say(ALICE, "/bonjour")
    assert "Je n'ai pas compris" in await bot.say(ALICE, "bonjour")
    assert "trop long" in await bot.say(ALICE, "x" * 30_000)
    assert await bot.say(ALICE, "bla bla", chat="group-1") == ""
    assert await bot.say(ALICE, "/inconnue", chat="group-1") == ""


async def test_cancel(bot: TestBot) -> None:
    assert "rien à annuler" in await bot.say(ALICE, "/annuler")
    await bot.say(ALICE, "/start")
    assert "annulé" in await bot.say(ALICE, "/annuler")
    assert "Je n'ai pas compris" in await bot.say(ALICE, "oui")
