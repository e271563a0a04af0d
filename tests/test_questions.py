"""Commune questions one at a time, and wording true to each platform (issue 15, items 4-5).

Each unknown or ambiguous place is its own short question with its own choices; codes
are postal codes first; suggestions keep to the person's départements; a commune reads
« Vesoul — 70000 » for everyone; numbered lists never share numbers; « J’accepte » and
« oui » are understood; texts say what each platform lets people do.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from bot.commands import split_command
from bot.conversations.engine import said_yes_or_no, typed_words
from bot.conversations.places import Doubt, resolve_places
from bot.domain import Choice, Outgoing
from bot.geo.communes import CommuneLayer
from bot.geo.perimeter import CommuneDoubt, parse_perimeter
from bot.i18n import (
    ANY_PLATFORM,
    COMMAND_IN_TEMPLATE,
    COMMAND_MARK,
    Catalog,
    Translator,
    commands_for,
)
from bot.router import Router
from bot.transports.matrix_render import message_contents
from bot.transports.numbered import NumberedChoices, render_choices
from tests.harness import OFFICERS, ROOT, TestBot, shared_layer

ANA = "telegram:5001"
BOB = "matrix:@bob:test"
OPERATOR = "telegram:100"
OFFICER = "telegram:200"
VESOUL, NOIDANS, LURE, MENDE = "70550", "70388", "70310", "48095"
FR = Translator(Catalog.load(), "fr")


@pytest.fixture(scope="module")
def layer() -> CommuneLayer:
    return shared_layer()


def names(layer: CommuneLayer, codes: tuple[str, ...]) -> list[str]:
    return [c.name for c in map(layer.by_insee, codes) if c is not None]


# -- resolving places -------------------------------------------------------------------


def test_each_doubtful_place_is_its_own_question_in_the_order_typed(
        layer: CommuneLayer) -> None:
    resolution = resolve_places(layer, FR, "Vesouk, 70000, Saint-Loup")
    assert resolution.found == [] and resolution.problems == []
    unknown, postal, loup = resolution.questions
    assert (unknown.doubt, unknown.typed) == (Doubt.UNKNOWN, "Vesouk")
    assert names(layer, unknown.candidates)[0] == "Vesoul"
    assert (postal.doubt, postal.typed) == (Doubt.POSTAL, "70000")
    assert names(layer, postal.candidates)[0] == "Vesoul"  # the most populous first
    assert len(postal.candidates) == len(layer.by_postal_code("70000"))
    assert (loup.doubt, loup.typed) == (Doubt.UNKNOWN, "Saint-Loup")
    assert all(question.candidates for question in resolution.questions)
    assert unknown.text(FR) == "« Vesouk » : commune introuvable. Vouliez-vous dire :"
    assert postal.text(FR) == ("Le code postal 70000 couvre 42 communes. Laquelle ? "
                               "(ou écrivez son nom)")
    assert postal.without([VESOUL]).text(FR) == postal.text(FR)  # still 42, one chosen


def test_suggestions_keep_to_the_persons_departements(layer: CommuneLayer) -> None:
    def suggested(text: str, home: tuple[str, ...] = ()) -> set[str]:
        (question,) = [q for q in resolve_places(layer, FR, text, home=home).questions
                       if q.typed == "Saint-Loup"]
        return {c.departement for c in map(layer.by_insee, question.candidates) if c}

    assert suggested("Saint-Loup") == {"70", "48"}  # nothing tells: both served
    assert suggested("Saint-Loup", home=(VESOUL,)) == {"70"}  # a Haute-Saône subscriber
    assert suggested("Vesoul, Saint-Loup") == {"70"}  # named in the same message
    assert suggested("70000, Saint-Loup") == {"70"}
    assert suggested("Saint-Loup", home=(MENDE,)) == {"48"}


def test_suggestions_only_from_the_departements_served(tmp_path: Path) -> None:
    haute_saone = CommuneLayer.load([ROOT / "config/geo/communes-70.geojson"])
    question = resolve_places(haute_saone, FR, "Saint-Loup").questions[0]
    assert {c.departement for c in map(haute_saone.by_insee, question.candidates) if c} \
        == {"70"}


def test_postal_codes_match_postal_codes_only(layer: CommuneLayer) -> None:
    (question,) = resolve_places(layer, FR, "70310").questions
    assert question.doubt is Doubt.POSTAL
    assert LURE not in question.candidates  # 70310 is Lure's INSEE code, not its postal code
    assert "Lure" not in names(layer, question.candidates)
    (lure,) = resolve_places(layer, FR, "70200").questions  # Lure's postal code: Lure first
    assert names(layer, lure.candidates)[0] == "Lure"
    # A code that is nobody's postal code is still read as an INSEE code.
    assert [c.name for c in resolve_places(layer, FR, VESOUL).found] == ["Vesoul"]
    # The perimeter grammar too: 70310 is Faucogney's postal area, not Lure.
    perimeter = parse_perimeter("70310", layer)
    assert LURE not in perimeter.communes
    assert perimeter.communes == {c.insee for c in layer.by_postal_code("70310")}


def test_one_code_for_everyone_and_it_can_be_typed_back(layer: CommuneLayer) -> None:
    vesoul = layer.by_insee(VESOUL)
    assert vesoul is not None and vesoul.label() == "Vesoul — 70000"
    for typed in ("Vesoul — 70000", "Vesoul 70000", "vesoul (70000)", "Vesoul - 70000"):
        assert resolve_places(layer, FR, typed).found == [vesoul], typed
    with pytest.raises(CommuneDoubt) as doubt:  # operators read the same label
        parse_perimeter("Vesouk+5km", layer)
    assert doubt.value.params["suggestions"].startswith("Vesoul — 70000")
    assert FR(doubt.value.key, **doubt.value.params).startswith(
        "Commune inconnue : « Vesouk+5km ». Vouliez-vous dire : Vesoul — 70000")


def test_a_stray_number_is_not_a_commune(layer: CommuneLayer) -> None:
    resolution = resolve_places(layer, FR, "3")
    assert resolution.questions == []
    assert resolution.problems == [
        "« 3 » n'est ni une commune, ni un code postal (5 chiffres), ni un des numéros proposés."]


# -- yes and no -------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["J’accepte", "j'accepte", "J‘ACCEPTE !", "oui", "Oui.",
                                   "ok", "OK", "d’accord", "yes"])
def test_typed_yes(typed: str) -> None:
    assert said_yes_or_no(typed) is True


@pytest.mark.parametrize("typed", ["Je refuse", "non", "No", "pas d’accord"])
def test_typed_no(typed: str) -> None:
    assert said_yes_or_no(typed) is False


def test_anything_else_is_neither() -> None:
    assert said_yes_or_no("peut-être") is None
    assert typed_words("  J’accepte  ! ") == "j'accepte"


async def test_typed_yes_everywhere_a_yes_is_expected(bot: TestBot) -> None:
    await bot.enroll(ANA, "commercant", "Vesoul")  # « oui » to the summary
    await bot.stop()
    bot.config = dataclasses.replace(bot.config, consent_version="2027-01")
    await bot.start()
    assert "a changé" in await bot.say(ANA, "/communes")
    assert "accord est enregistré" in await bot.say(ANA, "J’accepte")  # a phone's apostrophe
    assert "Vous désinscrire ?" in await bot.say(ANA, "/stop")
    assert "désinscrit" in await bot.say(ANA, "ok")


# -- the enrollment conversation --------------------------------------------------------


async def enrolled_to_communes(bot: TestBot, who: str) -> None:
    await bot.say(who, "/start")
    assert "communautés" in await bot.say(who, "J’accepte")
    await bot.say(who, "commercant")
    assert "Quelles communes" in await bot.say(who, "valider")


async def replies(bot: TestBot, who: str, text: str = "",
                  label: str | None = None) -> list[Outgoing]:
    """The messages one exchange brought: typed ``text``, or the choice labelled ``label``."""
    if label is not None:
        return await bot.send(bot._incoming(who, None, choice=bot.choice_data(who, label)))
    return await bot.send(bot._incoming(who, None, text=text))


async def test_vesouk_is_one_question_with_its_choices(bot: TestBot) -> None:
    await enrolled_to_communes(bot, ANA)
    (reply,) = await replies(bot, ANA, "Vesouk")
    assert reply.text == "« Vesouk » : commune introuvable. Vouliez-vous dire :"
    assert [c.label for c in reply.choices] == ["Vesoul — 70000", "Aucune de celles-ci"]
    (reply,) = await replies(bot, ANA, label="Vesoul — 70000")
    assert reply.text.startswith("Communes retenues : Vesoul — 70000.")
    assert [c.label for c in reply.choices] == ["Terminer ✔", "Tout effacer"]


async def test_three_doubtful_places_are_three_questions_one_at_a_time(bot: TestBot) -> None:
    await enrolled_to_communes(bot, ANA)
    (first,) = await replies(bot, ANA, "Vesouk, 70000, Saint-Loup")
    assert first.text.startswith("« Vesouk » : commune introuvable. Vouliez-vous dire :")
    assert "(Encore 2 après celle-ci.)" in first.text
    assert [c.label for c in first.choices] == ["Vesoul — 70000", "Aucune de celles-ci"]
    (second,) = await replies(bot, ANA, label="Vesoul — 70000")
    assert second.text.startswith("✔ Vesoul — 70000\nLe code postal 70000 couvre")
    labels = [c.label for c in second.choices]
    assert "Vesoul — 70000" not in labels  # chosen already
    assert labels[0] == "Échenoz-la-Méline — 70000" and labels[-1] == "Aucune de celles-ci"
    assert all(label.endswith("— 70000") for label in labels[:-1])
    (third,) = await replies(bot, ANA, label="Aucune de celles-ci")
    assert third.text.startswith("« Saint-Loup » : commune introuvable.")
    loup = [c.label for c in third.choices]
    assert loup[:-1] and not any("— 48" in label for label in loup)  # no Lozère village
    (done,) = await replies(bot, ANA, label="Saint-Loup-sur-Semouse — 70800")
    assert "Communes retenues : Vesoul — 70000, Saint-Loup-sur-Semouse — 70800." in done.text
    assert "Récapitulatif" in await bot.say(ANA, "terminer")
    assert "C'est fait" in await bot.say(ANA, "oui")


async def test_typing_instead_of_choosing_answers_the_question(bot: TestBot) -> None:
    await enrolled_to_communes(bot, ANA)
    await bot.say(ANA, "Vesouk, Grai")
    reply = await bot.say(ANA, "Vesoul")  # retyped: replaces the question asked
    assert reply.startswith("✔ Vesoul — 70000\n« Grai » : commune introuvable.")
    reply = await bot.say(ANA, "terminer")  # the question left is dropped
    assert "Récapitulatif" in reply and "Vesoul — 70000" in reply and "Gray" not in reply


async def test_a_question_answered_meanwhile_is_not_asked(bot: TestBot) -> None:
    await enrolled_to_communes(bot, ANA)
    await bot.say(ANA, "Vesouk, Vesoux")
    reply = await bot.press(ANA, "Vesoul — 70000")  # Vesoux's only candidate: chosen already
    assert "Vouliez-vous dire" not in reply and "Communes retenues" in reply


# -- wording per platform ---------------------------------------------------------------


async def test_matrix_says_number_and_bang_where_telegram_says_touch_and_slash(
        bot: TestBot) -> None:
    welcome = await bot.say(BOB, "/start")
    assert "désinscrire à tout moment avec !stop" in welcome
    communities = await bot.say(BOB, "J’accepte")
    assert "Répondez par leur numéro" in communities and "Touchez" not in communities
    welcome = await bot.say(ANA, "/start")
    assert "avec /stop" in welcome
    assert "Touchez-les" in await bot.say(ANA, "oui")
    help_text = await bot.say(BOB, "!aide")
    assert "!communes" in help_text and "/communes" not in help_text


async def test_a_timed_out_conversation_is_told_in_the_platforms_words(bot: TestBot) -> None:
    await bot.say(BOB, "/start")
    bot.advance(minutes=31)
    assert await bot.core.core.expire_conversations() == 1
    assert "Tapez !start pour reprendre" in bot.inbox(BOB)[-1]


def test_variant_lookup_order() -> None:
    catalog = Catalog({"fr": {"k": "fr", "k@numbered": "fr numbered", "only": "fr /aide"},
                       "en": {"k": "en"}})
    assert catalog.render("fr", "k", "matrix") == "fr numbered"
    assert catalog.render("fr", "k", "telegram") == "fr"
    assert catalog.render("fr", "k", None) == "fr"
    # The person's language first: an English plain entry beats a French variant.
    assert catalog.render("en", "k", "matrix") == "en"
    assert catalog.render("en", "only", "matrix") == "fr !aide"
    with pytest.raises(KeyError):
        catalog.render("fr", "missing", "matrix")


def test_every_command_the_catalogue_names_is_a_command() -> None:
    """The prefix rewrite touches commands and nothing else (dates, ratios, paths)."""
    catalog = Catalog.load()
    registry = Router().registry
    rewritten = 0
    for language in ("fr", "en"):
        for key in catalog.keys(language):
            for template in catalog.templates(language, key):  # each plural form
                for match in COMMAND_IN_TEMPLATE.finditer(template):
                    word = re.match(r"\{?([a-z_]+)\}?", template[match.end():])
                    assert word is not None, (key, template)
                    name = word.group(1)
                    assert registry.find(name) is not None or template[match.end()] == "{", \
                        (key, name)
                    rewritten += 1
    assert rewritten > 100
    assert Translator(catalog, "fr", "matrix")("render.progress", number=1, done=1, total=2,
                                                percent=50, sent=1, rate="1", limits="",
                                                seconds="1").count("1/2") == 1
    assert Translator(catalog, "fr", "matrix")("help.programmer").count("27/11") == 1


def test_a_text_for_every_platform_gets_each_ones_prefix() -> None:
    everyone = Translator(Catalog.load(), "fr", ANY_PLATFORM)
    hint = everyone("render.request_hint", number=3)
    assert hint == f"{COMMAND_MARK}valider 3 · {COMMAND_MARK}refuser 3 <motif>"
    assert commands_for(hint, "matrix") == "!valider 3 · !refuser 3 <motif>"
    assert commands_for(hint, "telegram") == "/valider 3 · /refuser 3 <motif>"
    assert split_command(commands_for(hint, "matrix")) == ("valider", "3 · !refuser 3 <motif>")


# -- numbered lists ---------------------------------------------------------------------


def test_numbers_never_collide_across_consecutive_lists() -> None:
    first = (Choice("Vesoul — 70000", "c:1:add:70550"), Choice("Aucune", "c:1:skip"))
    then = (Choice("Terminer ✔", "c:1:done"), Choice("Tout effacer", "c:1:clear"))
    numbers = NumberedChoices()
    assert numbers.shown("room", first) == 1
    assert numbers.shown("room", then) == 3  # shown before any answer: numbered on
    assert numbers.pick("room", "1") == "c:1:add:70550"  # the first list's « 1 »
    assert numbers.pick("room", "4") == "c:1:clear"
    assert numbers.shown("room", then) == 1  # the person answered: a new count
    assert numbers.pick("room", "3") is None
    assert render_choices(then, 3) == "  3. Terminer ✔\n  4. Tout effacer"
    numbers.replaced("room", first)  # an edited message shows its own choices from 1
    assert numbers.pick("room", "1") == "c:1:add:70550"


def test_matrix_renders_a_continued_list_from_its_first_number() -> None:
    message = Outgoing("Encore ?", choices=(Choice("Oui", "a"), Choice("Non", "b")))
    (content,) = message_contents(message, first=3)
    assert content["body"].endswith("  3. Oui\n  4. Non")
    assert content["formatted_body"].endswith('<ol start="3"><li>Oui</li><li>Non</li></ol>')


# -- the officers' request and the preview ----------------------------------------------


ALERT = "/alerte cambriolage Noidans-lès-Vesoul+5km : Vitrine forcée"


async def test_a_decided_request_shows_the_decision_and_no_commands(bot: TestBot) -> None:
    await bot.say(OPERATOR, ALERT)
    pending = bot.officers()[-2]
    assert pending.endswith("/valider 1 · /refuser 1 <motif>")
    assert bot.officers("matrix")[-2].endswith("!valider 1 · !refuser 1 <motif>")
    await bot.say(OFFICER, "/refuser 1 doublon", chat=OFFICERS)
    for platform in ("telegram", "matrix"):
        request = next(t for t in bot.officers(platform) if t.startswith("Demande"))
        assert "Refusée par" in request
        assert "/valider" not in request and "!valider" not in request, platform
        assert "/refuser" not in request and "!refuser" not in request, platform


async def test_no_mark_ever_reaches_a_platform(bot: TestBot) -> None:
    await bot.say(OPERATOR, ALERT)
    await bot.say(OFFICER, "/valider 1", chat=OFFICERS)
    for transport in bot.transports.values():
        for posts in transport.posted.values():
            for post in posts:
                for message in (post.message, *post.edits):
                    assert COMMAND_MARK not in message.text + (message.html or "")


async def test_the_preview_lists_the_named_communes_first(bot: TestBot) -> None:
    preview = await bot.say(OPERATOR, ALERT)
    line = next(line for line in preview.splitlines() if line.startswith("Périmètre"))
    assert line.split(" : ", 2)[-1].startswith("Noidans-lès-Vesoul, ")
    preview = await bot.say(OPERATOR, "/alerte vol Gray, Vesoul+2km : Vol de gasoil")
    line = next(line for line in preview.splitlines() if line.startswith("Périmètre"))
    assert line.split(" : ", 2)[-1].startswith("Gray, Vesoul, ")


# -- the guided alert ---------------------------------------------------------------------


async def test_guided_perimeter_asks_about_each_doubtful_commune(bot: TestBot) -> None:
    await bot.say(OPERATOR, "/alerte")
    await bot.press(OPERATOR, "Escroquerie")
    first = await bot.say(OPERATOR, "  Vesouk+5km, Grai")
    assert first == "« Vesouk » : commune introuvable. Vouliez-vous dire :"
    second = await bot.press(OPERATOR, "Vesoul — 70000")
    assert second == "« Grai » : commune introuvable. Vouliez-vous dire :"
    assert "communautés" in await bot.press(OPERATOR, "Gray — 70100")
    await bot.press(OPERATOR, "Tout le monde")
    await bot.press(OPERATOR, "Maintenant")
    confirm = await bot.say(OPERATOR, "Faux billets de 50 €")
    assert "périmètre : Vesoul et 5 km alentour" in confirm and "; Gray" in confirm
    assert "aperçu" in await bot.say(OPERATOR, "oui")  # a typed yes submits
    alert = await bot.core.services.stores.alerts.get(1)
    assert alert is not None and '"text": "Vesoul+5km, Gray"' in alert.perimeter_json


async def test_guided_perimeter_can_be_typed_again(bot: TestBot) -> None:
    await bot.say(OPERATOR, "/alerte")
    await bot.press(OPERATOR, "Escroquerie")
    await bot.say(OPERATOR, "Vesouk")
    assert "Quel périmètre" in await bot.press(OPERATOR, "je retape")
    assert "introuvable" in await bot.say(OPERATOR, "Grai")
    assert "communautés" in await bot.say(OPERATOR, "Gray")  # typed, not chosen
