from tests.harness import TestBot

OPERATOR, OFFICER = "telegram:100", "telegram:200"


async def test_alert_reaches_matching_subscribers(bot: TestBot) -> None:
    await bot.enroll("telegram:1", "commercant", "Vesoul")
    await bot.enroll("telegram:2", "commercant", "Gray")
    reply = await bot.say(
        OPERATOR, "/alerte cambriolage Vesoul+5km pour commercant : Vitrine forcée"
    )
    assert "Alerte n°1" in reply
    await bot.press(OFFICER, "Valider", chat="officers")
    await bot.drain()
    assert any("Vitrine forcée" in text for text in bot.inbox("telegram:1"))
    assert not any("Vitrine forcée" in text for text in bot.inbox("telegram:2"))
