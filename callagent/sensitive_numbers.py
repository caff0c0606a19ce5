"""Crisis lines, helplines and other sensitive public-service numbers: callagent never dials them.

An AI placing calls must not tie up a line a person in distress needs, nor a service that
exists for people (children, victims, patients) to call themselves. Data only, no I/O and
nothing fetched at run time: `callagent.numbers.check_number` refuses every number here, in any
written form (rule `sensitive_number`, no setting turns it off). Operators add their own with
DIAL_NEVER_CALL.

Where the list comes from. Each number is the one the service itself publishes (its website,
or the government or health-service page that runs or funds it), as of 2025; only numbers we
are confident of are listed, so the list is incomplete by nature, not authoritative. The
European 116 range comes from Commission Decision 2007/116/EC, amended by 2007/698/EC (116 006)
and 2009/884/EC (116 117): 116 000 missing children, 116 006 victims of crime, 116 111 child
helplines, 116 117 non-emergency medical on-call service, 116 123 emotional support. The whole
116 000-116 999 block is reserved for such services of social value, so every six-digit 116
number is refused in every EU and EEA country and the UK, named or not.

Countries covered by name: US, Canada, UK, Germany, France, Ireland, Australia, New Zealand,
Spain, Italy, the Netherlands, Belgium, Austria, Switzerland; the 116 range in the EU, EEA and UK.

`number` is E.164 ("+18002738255") for a number dialable from anywhere, or the short code as
dialed inside `country` ("988", "116123", "024"): short codes only reach the service from within
its country, and are matched there, or after that country's calling code ("+44 116 123"). Text
and TTY numbers are listed too: an SMS short code is not a call target, and a TTY line is for
people who cannot use a voice line.

Names hold no full phone number: they appear in refusal messages, which mask numbers. A name may
contain a short code that is the service's own name ("NHS 111", "1800RESPECT").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "COUNTRY_ADJECTIVES",
    "EU_116_REGIONS",
    "EU_116_SERVICES",
    "SERVICES",
    "Service",
    "eu_116_service",
]


@dataclass(frozen=True, slots=True)
class Service:
    """One number of one service."""

    country: str  # ISO 3166 region code of the country the service is for ("US", "GB")
    number: str  # E.164, or a short code as dialed in `country` (digits only)
    name: str  # the service's own name, without its full number
    category: str  # crisis line, suicide prevention, domestic violence, child helpline, ...

    @property
    def is_short_code(self) -> bool:
        return not self.number.startswith("+")

    def describe(self) -> str:
        """The service in words, e.g. "the UK Samaritans (emotional support)", for refusal messages."""
        country = COUNTRY_ADJECTIVES.get(self.country, self.country)
        return f"the {country} {self.name} ({self.category})"


# Categories.
CRISIS = "crisis line"
SUICIDE = "suicide prevention"
DOMESTIC_VIOLENCE = "domestic violence"
CHILD = "child helpline"
POISON = "poison control"
SEXUAL_ASSAULT = "sexual assault"
VETERANS = "veterans"
MENTAL_HEALTH = "mental health"
EMOTIONAL = "emotional support"
SUBSTANCE = "substance use"
LGBTQ = "LGBTQ+ crisis line"
TRAFFICKING = "human trafficking"
MEDICAL = "non-emergency medical"
VICTIMS = "victim support"
MISSING_CHILDREN = "missing children"
GAMBLING = "gambling"
BULLYING = "bullying"

_S = Service

SERVICES: tuple[Service, ...] = (
    # -- United States ---------------------------------------------------------------------
    _S("US", "988", "988 Suicide & Crisis Lifeline", SUICIDE),
    _S("US", "+18002738255", "Suicide & Crisis Lifeline's former number", SUICIDE),
    _S("US", "+18886289454", "Suicide & Crisis Lifeline, Spanish-language line", SUICIDE),
    _S("US", "+18007842433", "1-800-SUICIDE line, routed to the 988 Lifeline", SUICIDE),
    _S("US", "+18007994889", "Suicide & Crisis Lifeline and Veterans Crisis Line TTY", SUICIDE),
    _S("US", "988", "Veterans Crisis Line, 988 then 1", VETERANS),  # also 1-800-273-8255, then 1
    _S("US", "838255", "Veterans Crisis Line text line", VETERANS),
    _S("US", "+18007997233", "National Domestic Violence Hotline", DOMESTIC_VIOLENCE),
    _S("US", "+18007873224", "National Domestic Violence Hotline TTY", DOMESTIC_VIOLENCE),
    _S("US", "88788", "National Domestic Violence Hotline text line", DOMESTIC_VIOLENCE),
    _S("US", "+18447628483", "StrongHearts Native Helpline", DOMESTIC_VIOLENCE),
    _S("US", "+18002221222", "Poison Control, America's Poison Centers", POISON),
    _S("US", "+18004224453", "Childhelp National Child Abuse Hotline", CHILD),
    _S("US", "+18006564673", "RAINN National Sexual Assault Hotline", SEXUAL_ASSAULT),
    _S("US", "+18664887386", "Trevor Project lifeline", LGBTQ),
    _S("US", "678678", "Trevor Project text line", LGBTQ),
    _S("US", "+18775658860", "Trans Lifeline", LGBTQ),
    _S("US", "+18006624357", "SAMHSA National Helpline", SUBSTANCE),
    _S("US", "+18004874889", "SAMHSA National Helpline TTY", SUBSTANCE),
    _S("US", "+18009855990", "Disaster Distress Helpline", CRISIS),
    _S("US", "741741", "Crisis Text Line", CRISIS),
    _S("US", "+18009506264", "NAMI HelpLine", MENTAL_HEALTH),
    _S("US", "+18338526262", "National Maternal Mental Health Hotline", MENTAL_HEALTH),
    _S("US", "+18007862929", "National Runaway Safeline", "runaway youth"),
    _S("US", "+18883737888", "National Human Trafficking Hotline", TRAFFICKING),
    _S("US", "233733", "National Human Trafficking Hotline text line", TRAFFICKING),
    # -- Canada (the +1 toll-free numbers are shared with the US) --------------------------
    _S("CA", "988", "9-8-8 Suicide Crisis Helpline", SUICIDE),
    _S("CA", "+18334564566", "Talk Suicide Canada line, now 9-8-8", SUICIDE),
    _S("CA", "45645", "Talk Suicide Canada text line", SUICIDE),
    _S("CA", "+18006686868", "Kids Help Phone", CHILD),
    _S("CA", "686868", "Kids Help Phone text line", CHILD),
    _S("CA", "+18552423310", "Hope for Wellness Help Line", MENTAL_HEALTH),
    _S("CA", "+18773306366", "Trans Lifeline", LGBTQ),
    _S("CA", "+18339001010", "Canadian Human Trafficking Hotline", TRAFFICKING),
    # -- United Kingdom --------------------------------------------------------------------
    _S("GB", "116123", "Samaritans", EMOTIONAL),
    _S("GB", "+448081640123", "Samaritans Welsh-language line", EMOTIONAL),
    _S("GB", "+448001111", "Childline", CHILD),
    _S("GB", "+448088005000", "NSPCC Helpline", CHILD),
    _S("GB", "+448082000247", "National Domestic Abuse Helpline", DOMESTIC_VIOLENCE),
    _S("GB", "+448088010327", "Men's Advice Line", DOMESTIC_VIOLENCE),
    _S("GB", "+448000271234", "Scotland's Domestic Abuse and Forced Marriage Helpline", DOMESTIC_VIOLENCE),
    _S("GB", "+448088010800", "Live Fear Free helpline, Wales", DOMESTIC_VIOLENCE),
    _S("GB", "85258", "Shout text line", CRISIS),
    _S("GB", "111", "NHS 111", MEDICAL),
    _S("GB", "+44800585858", "CALM helpline, Campaign Against Living Miserably", SUICIDE),
    _S("GB", "+448000684141", "Papyrus HOPELINE247", SUICIDE),
    _S("GB", "+448085002222", "Rape Crisis 24/7 Support Line", SEXUAL_ASSAULT),
    _S("GB", "+44800838587", "Breathing Space helpline, Scotland", MENTAL_HEALTH),
    _S("GB", "+448088088000", "Lifeline, Northern Ireland", CRISIS),
    _S("GB", "+448081689111", "Victim Support line", VICTIMS),
    _S("GB", "+448000121700", "Modern Slavery & Exploitation Helpline", TRAFFICKING),
    _S("GB", "+448004708090", "Silver Line for older people", EMOTIONAL),
    _S("GB", "+448088020133", "National Gambling Helpline", GAMBLING),
    # -- Germany ---------------------------------------------------------------------------
    _S("DE", "+498001110111", "Telefonseelsorge", EMOTIONAL),
    _S("DE", "+498001110222", "Telefonseelsorge", EMOTIONAL),
    _S("DE", "116123", "Telefonseelsorge", EMOTIONAL),
    _S("DE", "116111", "Nummer gegen Kummer, Kinder- und Jugendtelefon", CHILD),
    _S("DE", "+498001110550", "Nummer gegen Kummer, Elterntelefon", CHILD),
    _S("DE", "116016", "Hilfetelefon Gewalt gegen Frauen", DOMESTIC_VIOLENCE),
    _S("DE", "+498000116016", "Hilfetelefon Gewalt gegen Frauen", DOMESTIC_VIOLENCE),
    _S("DE", "+498002255530", "Hilfetelefon Sexueller Missbrauch", SEXUAL_ASSAULT),
    _S("DE", "+498004040020", "Hilfetelefon Schwangere in Not", "pregnancy crisis"),
    _S("DE", "116006", "Weisser Ring Opfer-Telefon", VICTIMS),
    _S("DE", "116117", "ärztlicher Bereitschaftsdienst", MEDICAL),
    _S("DE", "+493019240", "Giftnotruf Berlin", POISON),
    _S("DE", "+4922819240", "Giftnotruf Bonn", POISON),
    _S("DE", "+49361730730", "Giftnotruf Erfurt", POISON),
    _S("DE", "+4976119240", "Giftnotruf Freiburg", POISON),
    _S("DE", "+4955119240", "Giftnotruf Göttingen", POISON),
    _S("DE", "+49684119240", "Giftnotruf Homburg/Saar", POISON),
    _S("DE", "+49613119240", "Giftnotruf Mainz", POISON),
    _S("DE", "+498919240", "Giftnotruf München", POISON),
    # -- France ----------------------------------------------------------------------------
    _S("FR", "3114", "numéro national de prévention du suicide", SUICIDE),
    _S("FR", "119", "Allô Enfance en Danger", CHILD),
    _S("FR", "3919", "Violences Femmes Info", DOMESTIC_VIOLENCE),
    _S("FR", "116006", "France Victimes", VICTIMS),
    _S("FR", "3020", "Non au harcèlement", BULLYING),
    _S("FR", "3018", "e-Enfance cyberharcèlement line", BULLYING),
    _S("FR", "3977", "maltraitance des personnes âgées", "elder abuse"),
    _S("FR", "115", "Samu social, hébergement d'urgence", "homelessness"),
    _S("FR", "+33800231313", "Drogues Info Service", SUBSTANCE),
    _S("FR", "+33800235236", "Fil Santé Jeunes", MENTAL_HEALTH),
    _S("FR", "+33972394050", "SOS Amitié", EMOTIONAL),
    _S("FR", "+33145394000", "Suicide Écoute", SUICIDE),
    _S("FR", "+33140054848", "centre antipoison de Paris", POISON),
    _S("FR", "+33472116911", "centre antipoison de Lyon", POISON),
    _S("FR", "+33491752525", "centre antipoison de Marseille", POISON),
    # -- Ireland ---------------------------------------------------------------------------
    _S("IE", "116123", "Samaritans Ireland", EMOTIONAL),
    _S("IE", "116006", "Crime Victims Helpline", VICTIMS),
    _S("IE", "+3531800666666", "ISPCC Childline", CHILD),
    _S("IE", "50808", "text-message crisis service", CRISIS),
    _S("IE", "+3531800341900", "Women's Aid helpline", DOMESTIC_VIOLENCE),
    _S("IE", "+3531800247247", "Pieta helpline", SUICIDE),
    _S("IE", "+3531800778888", "Dublin Rape Crisis Centre helpline", SEXUAL_ASSAULT),
    _S("IE", "+3531800804848", "Aware support line", MENTAL_HEALTH),
    _S("IE", "+35318092166", "National Poisons Information Centre", POISON),
    # -- Australia -------------------------------------------------------------------------
    _S("AU", "+61131114", "Lifeline", CRISIS),
    _S("AU", "+61477131114", "Lifeline text line", CRISIS),
    _S("AU", "+611800551800", "Kids Helpline", CHILD),
    _S("AU", "+611800737732", "1800RESPECT", DOMESTIC_VIOLENCE),
    _S("AU", "+611300224636", "Beyond Blue support service", MENTAL_HEALTH),
    _S("AU", "+611300659467", "Suicide Call Back Service", SUICIDE),
    _S("AU", "+61131126", "Poisons Information Centre", POISON),
    _S("AU", "+611300789978", "MensLine Australia", MENTAL_HEALTH),
    _S("AU", "+611800011046", "Open Arms veterans and families counselling", VETERANS),
    _S("AU", "+611800184527", "QLife", LGBTQ),
    _S("AU", "+61139276", "13YARN", CRISIS),
    _S("AU", "+611800334673", "Butterfly Foundation helpline", "eating disorders"),
    _S("AU", "+611800858858", "Gambling Help", GAMBLING),
    # -- New Zealand -----------------------------------------------------------------------
    _S("NZ", "1737", "1737 Need to talk?", MENTAL_HEALTH),
    _S("NZ", "+64800543354", "Lifeline Aotearoa", CRISIS),
    _S("NZ", "+64508828865", "Suicide Crisis Helpline", SUICIDE),
    _S("NZ", "+64800376633", "Youthline", CHILD),
    _S("NZ", "234", "Youthline text line", CHILD),
    _S("NZ", "+64800611116", "Healthline", MEDICAL),
    _S("NZ", "+64800764766", "National Poisons Centre", POISON),
    _S("NZ", "+64800726666", "Samaritans", EMOTIONAL),
    _S("NZ", "+64800733843", "Women's Refuge crisis line", DOMESTIC_VIOLENCE),
    _S("NZ", "+64508744633", "Shine helpline", DOMESTIC_VIOLENCE),
    _S("NZ", "+64800111757", "Depression Helpline", MENTAL_HEALTH),
    _S("NZ", "+648009428787", "What's Up", CHILD),
    _S("NZ", "+64800044334", "Safe to talk", SEXUAL_ASSAULT),
    # -- Spain -----------------------------------------------------------------------------
    _S("ES", "024", "Línea 024 de atención a la conducta suicida", SUICIDE),
    _S("ES", "016", "016 violencia de género", DOMESTIC_VIOLENCE),
    _S("ES", "+34900202010", "Fundación ANAR helpline", CHILD),
    _S("ES", "+34717003717", "Teléfono de la Esperanza", EMOTIONAL),
    _S("ES", "+34915620420", "Servicio de Información Toxicológica", POISON),
    # -- Italy -----------------------------------------------------------------------------
    _S("IT", "19696", "Telefono Azzurro", CHILD),
    _S("IT", "114", "114 Emergenza Infanzia", CHILD),
    _S("IT", "1522", "1522 antiviolenza e stalking", DOMESTIC_VIOLENCE),
    _S("IT", "+390223272327", "Telefono Amico", EMOTIONAL),
    _S("IT", "+390266101029", "Centro Antiveleni di Milano Niguarda", POISON),
    # -- Netherlands -----------------------------------------------------------------------
    _S("NL", "113", "113 Zelfmoordpreventie", SUICIDE),
    _S("NL", "+318000113", "113 Zelfmoordpreventie", SUICIDE),
    _S("NL", "+318000432", "De Kindertelefoon", CHILD),
    _S("NL", "+318002000", "Veilig Thuis", DOMESTIC_VIOLENCE),
    _S("NL", "+31880767000", "De Luisterlijn", EMOTIONAL),
    # -- Belgium, Austria, Switzerland -----------------------------------------------------
    _S("BE", "1813", "Zelfmoordlijn 1813", SUICIDE),
    _S("BE", "+3280032123", "Centre de Prévention du Suicide", SUICIDE),
    _S("BE", "1712", "1712 helpline for violence, abuse and child abuse", DOMESTIC_VIOLENCE),
    _S("BE", "+3270245245", "Centre Antipoisons / Antigifcentrum", POISON),
    _S("AT", "142", "Telefonseelsorge", EMOTIONAL),
    _S("AT", "147", "Rat auf Draht", CHILD),
    _S("AT", "+43800222555", "Frauenhelpline gegen Gewalt", DOMESTIC_VIOLENCE),
    _S("CH", "143", "Die Dargebotene Hand / La Main Tendue", EMOTIONAL),
    _S("CH", "147", "Pro Juventute Beratung + Hilfe", CHILD),
    _S("CH", "145", "Tox Info Suisse", POISON),
)

# -- the European 116 range -----------------------------------------------------------------

# EU member states, the other EEA countries (IS, LI, NO) and the UK, which kept the range.
EU_116_REGIONS: frozenset[str] = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO GB".split()  # noqa: SIM905 - country codes, kept readable
)

# The harmonised services (Commission Decision 2007/116/EC and amendments): name, category.
EU_116_SERVICES: dict[str, tuple[str, str]] = {
    "116000": ("harmonised hotline for missing children", MISSING_CHILDREN),
    "116006": ("harmonised helpline for victims of crime", VICTIMS),
    "116111": ("harmonised child helpline", CHILD),
    "116117": ("harmonised non-emergency medical on-call service", MEDICAL),
    "116123": ("harmonised emotional support helpline", EMOTIONAL),
}

EU_116_RANGE = re.compile(r"116[0-9]{3}")


def eu_116_service(country: str, code: str) -> Service:
    """The service behind a six-digit 116 code in `country` (one of EU_116_REGIONS), for
    codes no entry of SERVICES names."""
    name, category = EU_116_SERVICES.get(
        code, ("harmonised 116 number reserved for services of social value", "helpline")
    )
    return Service(country, code, name, category)


# fmt: off
COUNTRY_ADJECTIVES: dict[str, str] = {
    "US": "US", "CA": "Canadian", "GB": "UK", "DE": "German", "FR": "French", "IE": "Irish",
    "AU": "Australian", "NZ": "New Zealand", "ES": "Spanish", "IT": "Italian", "NL": "Dutch",
    "BE": "Belgian", "AT": "Austrian", "CH": "Swiss", "BG": "Bulgarian", "HR": "Croatian",
    "CY": "Cypriot", "CZ": "Czech", "DK": "Danish", "EE": "Estonian", "FI": "Finnish",
    "GR": "Greek", "HU": "Hungarian", "LV": "Latvian", "LT": "Lithuanian", "LU": "Luxembourg",
    "MT": "Maltese", "PL": "Polish", "PT": "Portuguese", "RO": "Romanian", "SK": "Slovak",
    "SI": "Slovenian", "SE": "Swedish", "IS": "Icelandic", "LI": "Liechtenstein", "NO": "Norwegian",
}
# fmt: on
