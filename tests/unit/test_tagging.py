import pickle

import pytest
import yaml

from pipeline.clean import clean_text
from pipeline.tagging import TaxonomyError, _fold, build_taxonomy, load_taxonomy, tag_text


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy()


def topics(tags):
    return {t["topic"] for t in tags}


def test_seed_is_tagged_with_evidence(taxonomy, seed_path):
    lines = seed_path.read_text("utf-8").split("\n")
    cleaned = clean_text(lines[0], "\n".join(lines[1:]))
    tags = {t["topic"]: t for t in tag_text(taxonomy, lines[0], cleaned.body)}
    assert {"detainees", "grain_deal", "annexation"} <= tags.keys()
    phrases = {t: {e["phrase"] for e in tags[t]["evidence"]} for t in tags}
    assert {"Paul Whelan", "Brittney Griner"} <= phrases["detainees"]
    assert "grain deal" in phrases["grain_deal"]
    assert any(p.lower().startswith("annex") for p in phrases["annexation"])
    for tag in tags.values():
        assert tag["score"] >= 2
        for evidence in tag["evidence"]:
            text = lines[0] if evidence["field"] == "headline" else cleaned.body
            assert text[evidence["start"] : evidence["end"]] == evidence["phrase"]


@pytest.mark.parametrize(
    "text",
    [
        "Grain prices in Kansas rose for a third week as wheat futures climbed on dry weather.",
        "The hospital annexed a building wing to add forty beds for the winter season.",
        "A suspect was detained by local police after the marathon, officers said.",
    ],
)
def test_near_misses_stay_untagged(taxonomy, text):
    assert not topics(tag_text(taxonomy, "Local news", text)) & {"grain_deal", "annexation", "detainees"}


def test_one_weak_mention_does_not_tag(taxonomy):
    tags = tag_text(
        taxonomy, "Ministers meet", "The talks touched briefly on detainees before moving to trade."
    )
    assert "detainees" not in topics(tags)


def test_inflected_russian_forms_match(taxonomy):
    tags = tag_text(
        taxonomy, "Зерновая сделка продлена", "Зерновую сделку продлили ещё на 120 дней, сообщили в ООН."
    )
    assert "grain_deal" in topics(tags)


SPEC = {
    "topics": [
        {
            "id": "annexation",
            "threshold": 2,
            "title_weight": 2,
            "terms": {"en": [{"phrase": "annex*", "weight": 1}, {"phrase": "sham referendum*", "weight": 2}]},
            "exclude": {"en": ["annexed a building wing"]},
        }
    ]
}


def test_wildcards_boundaries_exclusions_and_title_weight():
    taxonomy = build_taxonomy(SPEC)
    assert tag_text(taxonomy, "", "They held sham referendums.")[0]["score"] == 2
    assert tag_text(taxonomy, "", "annexations and annexed land")[0]["score"] == 2
    assert tag_text(taxonomy, "", "reannexation of nothing") == []  # no match inside a word
    assert tag_text(taxonomy, "", "The clinic annexed a building wing. Annex plans.") == []
    assert tag_text(taxonomy, "Annexation", "")[0]["score"] == 2


def test_offsets_survive_dotted_capital_i():
    taxonomy = build_taxonomy({"topics": [{"id": "t", "threshold": 1, "terms": {"az": ["ilham"]}}]})
    text = "İİİ İlham Əliyev"
    evidence = tag_text(taxonomy, "", text)[0]["evidence"][0]
    assert text[evidence["start"] : evidence["end"]] == "İlham"


def test_bad_taxonomies_fail_at_load():
    with pytest.raises(ValueError, match="missing or repeated id"):
        build_taxonomy({"topics": [{"terms": {"en": ["x"]}}]})
    with pytest.raises(ValueError, match="no terms"):
        build_taxonomy({"topics": [{"id": "x"}]})
    with pytest.raises(ValueError, match="'\\*' must follow letters"):
        build_taxonomy({"topics": [{"id": "x", "terms": {"en": ["*"]}}]})


def test_taxonomy_pickles_for_beam_workers(taxonomy):
    clone = pickle.loads(pickle.dumps(taxonomy))
    text = "Brittney Griner and Paul Whelan remain detained."
    assert tag_text(clone, "", text) == tag_text(taxonomy, "", text)


def test_bundled_taxonomy_has_the_topics_coverage_needs(taxonomy):
    ids = {t.id for t in taxonomy.topics}
    assert {"detainees", "grain_deal", "annexation"} <= ids
    assert len(ids) >= 8


def test_weak_terms_need_the_topics_context(taxonomy):
    swiss = "Swiss voters approved the pension reform in a referendum. Unions fought the referendum."
    assert "annexation" not in topics(tag_text(taxonomy, "Referendum result", swiss))
    occupied = "Russia staged a referendum in occupied Kherson. Kyiv said the referendum was void."
    assert "annexation" in topics(tag_text(taxonomy, "Referendum result", occupied))


def test_names_must_be_capitalised(taxonomy):
    assert "detainees" not in topics(
        tag_text(taxonomy, "", "The champion won a blitz bout. Russia detained nobody.")
    )
    spec = {
        "topics": [{"id": "t", "threshold": 1, "names": {"en": ["Viktor Bout"]}, "phrases": {"en": ["bout"]}}]
    }
    small = build_taxonomy(spec)
    [tag] = tag_text(small, "", "viktor bout; Viktor Bout")
    assert [e["phrase"] for e in tag["evidence"]] == ["bout", "Viktor Bout"]


def test_forms_and_dotless_i_match():
    spec = {
        "topics": [
            {
                "id": "t",
                "threshold": 2,
                "phrases": {
                    "ru": [{"phrase": "Пол Уилан", "weight": 2, "forms": ["Пола Уилана"]}],
                    "az": [{"phrase": "taxıl sazişi*", "weight": 2}],
                },
            }
        ]
    }
    small = build_taxonomy(spec)
    assert (
        tag_text(small, "", "Освобождения Пола Уилана добиваются")[0]["evidence"][0]["phrase"]
        == "Пола Уилана"
    )
    evidence = tag_text(small, "TAXIL SAZIŞININ UZADILMASI", "")[0]["evidence"][0]
    assert evidence["phrase"] == "TAXIL SAZIŞININ"


def test_exclusions_only_cancel_their_own_topic():
    spec = {
        "topics": [
            {"id": "a", "threshold": 1, "phrases": {"en": ["annex*"]}, "exclude": {"en": ["annex building"]}},
            {"id": "b", "threshold": 1, "phrases": {"en": ["annex building"]}},
        ]
    }
    assert topics(tag_text(build_taxonomy(spec), "", "The annex building opens.")) == {"b"}


def test_overlapping_hits_count_once_and_evidence_offsets_hold(taxonomy):
    headline = "Paul Whelan moved"
    body = "Paul Whelan, the detainee, was moved. Whelan's family spoke."
    [tag] = [t for t in tag_text(taxonomy, headline, body) if t["topic"] == "detainees"]
    for e in tag["evidence"]:
        text = headline if e["field"] == "headline" else body
        assert text[e["start"] : e["end"]] == e["phrase"]
    assert [e["phrase"] for e in tag["evidence"]].count("Paul Whelan") == 2
    assert "Whelan" not in [e["phrase"] for e in tag["evidence"] if e["start"] == 0]


def test_unknown_entry_shapes_fail_at_load():
    with pytest.raises(ValueError, match="a phrase is a string"):
        build_taxonomy({"topics": [{"id": "x", "phrases": {"en": [42]}}]})
    with pytest.raises(ValueError, match="must be positive"):
        build_taxonomy({"topics": [{"id": "x", "phrases": {"en": [{"phrase": "y", "weight": 0}]}}]})


_GRAIN = "topics:\n  - id: grain_deal\n    threshold: 2.0\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            _GRAIN + "    phrases:\n      en:\n        - {phrase: grain corridor, weigth: 2}\n",
            "topics.grain_deal.phrases.en[0].weigth: unknown key (did you mean 'weight'?)",
        ),
        (
            _GRAIN + "    phrases: {en: [grain]}\n    exlude: {en: [grain elevator]}\n",
            "topics.grain_deal.exlude: unknown key (did you mean 'exclude'?)",
        ),
        (
            _GRAIN + "    phrases:\n      en:\n        - {phrase: grain corridor, weight: -1}\n",
            "topics.grain_deal.phrases.en[0].weight: -1 must be positive",
        ),
        (
            "topics:\n  - id: grain_deal\n    threshold: high\n    phrases: {en: [grain]}\n",
            "topics.grain_deal.threshold: 'high' is not a number",
        ),
        (_GRAIN + "    phrases: {en: [grain, 5]}\n", "topics.grain_deal.phrases.en[1]: 5 is not a string"),
        ("version: 2\n", "missing key 'topics'"),
        ("topics: []\n", "topics: needs at least one entry"),
        ("topics:\n  - label: no id\n    phrases: {en: [x]}\n", "topics[0]: missing key 'id'"),
        ("topics: [unclosed\n", "not valid YAML: did not find expected ',' or ']' (line 2, column 1)"),
    ],
    ids=[
        "misspelled-weight",
        "misspelled-exclude",
        "negative-weight",
        "wrong-type",
        "phrase-not-string",
        "missing-topics",
        "no-topics",
        "topic-without-id",
        "not-yaml",
    ],
)
def test_taxonomy_files_are_checked_against_the_schema(tmp_path, text, message):
    path = tmp_path / "taxonomy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TaxonomyError) as caught:
        load_taxonomy(path)
    assert str(caught.value) == f"{path}: {message}"


def test_unreadable_taxonomy_files_are_named(tmp_path):
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("topics:\n  - id: caf\xe9\n".encode("latin-1"))
    for path, message in [
        (tmp_path / "missing.yaml", f"taxonomy file {tmp_path / 'missing.yaml'} does not exist"),
        (tmp_path, f"taxonomy file {tmp_path} is a folder, not a file"),
        (latin, f"taxonomy file {latin} is not UTF-8 text (invalid continuation byte at byte 19)"),
    ]:
        with pytest.raises(TaxonomyError) as caught:
            load_taxonomy(path)
        assert str(caught.value) == message


def test_a_taxonomy_file_of_the_bundled_shape_loads(tmp_path):
    from importlib import resources

    path = tmp_path / "taxonomy.yaml"
    path.write_text(resources.files("pipeline").joinpath("taxonomy.yaml").read_text("utf-8"), "utf-8")
    tags = tag_text(load_taxonomy(path), "Black Sea grain deal collapses", "The grain corridor closed.")
    assert "grain_deal" in topics(tags)


# The compiled core (pipeline/tagging_native) must give exactly what the Python specification gives.

EDGE_SPEC = {
    "topics": [
        {
            "id": "swaps",
            "threshold": 2,
            "title_weight": 1.5,
            "terms": {
                "en": ["prisoner swap*", "exchange* of prisoner*", {"phrase": "#bringhome", "weight": 2}]
            },
            "names": {"en": ["Whelan", "Viktor Bout"]},
            "exclude": {"en": ["swap meet"]},
        },
        {
            "id": "grain",
            "threshold": 1.5,
            "terms": {"en": [{"phrase": "corridor", "weight": 0.5}, "grain deal"], "az": ["taxıl dəhlizi"]},
            "context": {"en": ["black sea"]},
        },
    ]
}


def _random_texts(taxonomy, count, seed):
    """Taxonomy words in every case, glued by spaces, punctuation, digits, and characters whose
    case mapping or class is unusual (dotted/dotless i, Kelvin sign, titlecase, combining marks,
    characters beyond the Basic Multilingual Plane)."""
    import random

    rng = random.Random(seed)
    words = []
    for topic in taxonomy.spec["topics"]:
        for kind in ("phrases", "terms", "names", "exclude", "context"):
            for items in (topic.get(kind) or {}).values():
                for item in items:
                    words += (item if isinstance(item, str) else item["phrase"]).replace("*", "").split()
    glue = list(" \n\t.,-_'\"()«»0123456789²½İıIK\u212aΩ\u2126ǅé\u0301\u00a0\u2028") + ["ЁЖ", "\U0001f600"]
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(0, 25)):
            word = rng.choice(words)
            word = rng.choice([word, word.upper(), word.capitalize()])
            parts += [
                word + rng.choice(["", "", "s", "ы", "ami", "2", "_", "ing"]),
                rng.choice(glue + [" "] * 30),
            ]
        text = "".join(parts)
        cut = rng.randint(0, len(text))
        yield text[:cut].replace("\n", " "), text[cut:]


def _python(taxonomy):
    import dataclasses

    return dataclasses.replace(taxonomy, native=None)


def test_compiled_tagger_is_built(taxonomy):
    assert taxonomy.native is not None, "pipeline._tagging_native missing: reinstall with cargo on PATH"


def test_compiled_tagger_matches_python_on_the_evaluation_sets(taxonomy):
    from benchmarks.quality import _load
    from benchmarks.stages import synthetic_stories

    stories = [
        (s.get("headline") or "", s["body"])
        for name in ("stories.yaml", "heldout.yaml")
        for s in _load(name)["stories"]
    ]
    stories += synthetic_stories(300) + synthetic_stories(300, dense=False)
    python = _python(taxonomy)
    tagged = 0
    for headline, body in stories:
        expected = tag_text(python, headline, body)
        assert tag_text(taxonomy, headline, body) == expected, headline
        tagged += bool(expected)
    assert tagged > 300  # the comparison covers real tags, not only empty results


@pytest.mark.parametrize("spec", [None, EDGE_SPEC], ids=["bundled", "edge"])
def test_compiled_tagger_matches_python_on_random_text(taxonomy, spec):
    taxonomy = taxonomy if spec is None else build_taxonomy(spec)
    python = _python(taxonomy)
    compiled = tagged = 0
    for headline, body in _random_texts(taxonomy, 6000, seed=5):
        expected = tag_text(python, headline, body)
        assert tag_text(taxonomy, headline, body) == expected, (headline, body)
        joined = f"{headline}\n{body}"
        compiled += taxonomy.native.tag(joined, _fold(joined), len(headline) + 1) is not None
        tagged += bool(expected)
    assert compiled > 4000 and tagged > 300


def test_compiled_tagger_refuses_a_fold_that_moves_characters(taxonomy):
    with pytest.raises(ValueError, match="in place"):
        taxonomy.native.tag("İ grain deal", "i̇ grain deal", 2)


# One clear sentence and a passing mention, on real copy: the sentences and the stories around them
# are texts of the real-copy set's development part (benchmarks/quality/real). Its texts are all
# under 400 words, so it holds no long story with a passing mention; these tests build one from its
# stories about something else (Swiss votes, wheat markets, Greenland).
CLEAR = {
    # en-anewz-pow-307
    "detainees": "Russia and Ukraine exchanged 307 military personnel each on Saturday, marking the second "
    "day of what is expected to become the largest prisoner swap since the war between the two "
    "countries began three years ago.",
    # en-axios-grain-halt
    "grain_deal": "Russia on Monday said it's suspending its participation in the vital Black Sea grain "
    "deal until the country's conditions are met.",
}
ELSEWHERE = (
    "en-lenews-swiss-referendum",
    "en-swisstimes-cantonal-votes",
    "en-nasdaq-wheat-2024-01",
    "en-reuters-wheat-albertafarmexpress",
    "en-reuters-wheat-canadiancattlemen",
    "en-reuters-swiss-pension-dailytimes",
    "en-dpa-swiss-pension-washingtondcdespatch",
    "en-politico-greenland-annex",
)
SEEDED = {"detainees", "grain_deal", "annexation"}


@pytest.fixture(scope="module")
def elsewhere(taxonomy):
    """The cleaned paragraphs of real stories about something else, none of them tagged with a
    seeded topic on its own."""
    from benchmarks.quality.real_copy import load_real

    texts = {t["id"]: t for t in load_real()}
    paragraphs = []
    for text_id in ELSEWHERE:
        text = texts[text_id]
        assert not text["topics"]
        body = clean_text(text["headline"] or "", text["body"]).body
        assert not topics(tag_text(taxonomy, "", body)) & SEEDED, text_id
        paragraphs += [p for p in body.split("\n\n") if p]
    return paragraphs


def _story(paragraphs):
    body = "\n\n".join(paragraphs)
    return body, len(body)


@pytest.mark.parametrize("topic", sorted(CLEAR))
def test_one_clear_sentence_tags_a_short_story(taxonomy, elsewhere, topic):
    body, length = _story([CLEAR[topic], *elsewhere[:2]])
    assert length < taxonomy.long_story_chars
    assert topic in topics(tag_text(taxonomy, "", body))
    assert topic in topics(tag_text(_python(taxonomy), "", body))


def test_one_clear_sentence_in_a_short_german_wire(taxonomy):
    # de-leitzahl-pow-2024-12: two weak words in one sentence, and the story is four sentences long.
    body = (
        "Russland und die Ukraine haben jeweils 150 Kriegsgefangene ausgetauscht. Der Austausch sei auf "
        "Vermittlung der Vereinigten Arabischen Emirate zustande gekommen, teilte das russische "
        "Verteidigungsministerium mit."
    )
    assert "detainees" in topics(tag_text(taxonomy, "", body))


@pytest.mark.parametrize("topic", sorted(CLEAR))
def test_a_passing_mention_deep_in_a_long_story_does_not_tag(taxonomy, elsewhere, topic):
    half = len(elsewhere) // 2
    body, length = _story([*elsewhere[:half], CLEAR[topic], *elsewhere[half:]])
    assert length > 2 * taxonomy.long_story_chars
    for tagger in (taxonomy, _python(taxonomy)):
        assert not topics(tag_text(tagger, "", body)) & SEEDED
    # The same sentence as the story's lead, or its headline, makes the story about the topic.
    lead, _ = _story([CLEAR[topic], *elsewhere])
    assert topic in topics(tag_text(taxonomy, "", lead))
    assert topic in topics(tag_text(taxonomy, CLEAR[topic], _story(elsewhere)[0]))


def test_a_long_story_about_the_topic_keeps_it_behind_a_lead_about_something_else(taxonomy, elsewhere):
    from benchmarks.quality.real_copy import load_real

    reports = ("en-reuters-pow-307-indiatoday", "en-anewz-pow-307", "en-abc-pow-2025-05-abcnews")
    texts = {t["id"]: t for t in load_real()}
    bodies = [clean_text(texts[i]["headline"] or "", texts[i]["body"]).body for i in reports]
    body, length = _story([*elsewhere[:3], *bodies])
    assert length > taxonomy.long_story_chars
    assert len("\n\n".join(elsewhere[:3])) > taxonomy.lead_chars  # the lead is about something else
    for tagger in (taxonomy, _python(taxonomy)):
        assert "detainees" in topics(tag_text(tagger, "", body))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("long_story_chars: 0\ntopics: [{id: t, terms: {en: [x]}}]\n", "long_story_chars: 0 is less than"),
        ("lead_chars: -1\ntopics: [{id: t, terms: {en: [x]}}]\n", "lead_chars: -1 is less than"),
        ("long_story_chars: many\ntopics: [{id: t, terms: {en: [x]}}]\n", "long_story_chars: 'many' is not"),
    ],
)
def test_story_length_settings_are_checked(tmp_path, text, message):
    path = tmp_path / "taxonomy.yaml"
    path.write_text(text, "utf-8")
    with pytest.raises(TaxonomyError, match=message):
        load_taxonomy(path)
    with pytest.raises(ValueError, match="long_story_chars|lead_chars"):
        build_taxonomy(yaml.safe_load(text))


@pytest.mark.parametrize(
    ("topic", "body"),
    [
        (
            "detainees",
            "Rusia y Ucrania acordaron intercambiar a cien prisioneros de guerra cada uno. Los soldados "
            "liberados regresaron a casa el jueves.",
        ),
        (
            "grain_deal",
            "Rusia suspendió su participación en el acuerdo de exportación de granos ucranianos. El Kremlin "
            "dijo que volvería cuando se cumplan sus condiciones.",
        ),
        (
            "annexation",
            "Kiev no reconocerá la anexión de Crimea por parte de Rusia. La península sigue ocupada desde 2014.",
        ),
    ],
)
def test_spanish_wires_are_tagged(taxonomy, topic, body):
    assert topics(tag_text(taxonomy, "", body)) & SEEDED == {topic}


@pytest.mark.parametrize(
    "body",
    [
        "Die Weizenpreise in Chicago stiegen, weil Getreide aus den USA knapp wurde. Händler erwarten mehr Getreide.",
        "Les électeurs suisses ont rejeté le référendum sur les retraites. Un second référendum suivra.",
        "La policía detuvo a un aficionado tras el partido. El prisionero fue liberado con una multa.",
        "Futbolcu takası için kulüpler anlaştı. Takas yarın açıklanacak.",
        "Sveitsiske velgere sa nei i folkeavstemningen om pensjon. Neste folkeavstemning er i juni.",
        "Поліція затримала футбольного фаната. Його тримали в полоні власних боргів, жартують друзі.",
        "Die Schweizer stimmten am Sonntag in einem Referendum über die Renten ab. Die nächste Volksabstimmung "
        "folgt im Juni.",
        "The two clubs swapped strikers in January and repatriated their loan fees before the deadline.",
        "Le conseil municipal a voté l'annexion d'une parcelle voisine; l'annexion sera effective en mars.",
        "Sveitsarane sa nei i folkerøystinga om pensjon. Neste folkerøysting er i juni.",
        "Belediye meclisi komşu mahallenin ilhakını onayladı. İlhak kararı yarın yürürlüğe girecek.",
    ],
)
def test_near_misses_in_the_new_languages_stay_untagged(taxonomy, body):
    # Weak words of a seeded topic, repeated, without the topic's context (Russia, Ukraine, ...),
    # or the general wording in stories about something else.
    assert not topics(tag_text(taxonomy, "", body)) & SEEDED


def test_americans_detained_at_home_are_not_the_detainees_topic(taxonomy):
    # en-latimes-ice-citizens (a near miss of the real-copy set): "detained" twice in a story about
    # the United States' own immigration agents. Americans held abroad have their captor as context.
    body = (
        "American citizens have been increasingly caught up in the immigration crackdown: a doctoral "
        "student filming a raid in Hollywood detained for 25 hours, an Illinois man held for 10 hours in "
        "detention. Democratic members of Congress have been pressing for a full accounting of the "
        "citizens detained."
    )
    assert "detainees" not in topics(tag_text(taxonomy, "", body))
    abroad = body.replace("the immigration crackdown", "Russia's crackdown")
    assert "detainees" in topics(tag_text(taxonomy, "", abroad))


def test_story_length_settings_travel_with_the_taxonomy_to_workers(taxonomy, elsewhere):
    clone = pickle.loads(pickle.dumps(taxonomy))
    half = len(elsewhere) // 2
    body, _ = _story([*elsewhere[:half], CLEAR["grain_deal"], *elsewhere[half:]])
    assert (clone.long_story_chars, clone.lead_chars) == (taxonomy.long_story_chars, taxonomy.lead_chars)
    assert tag_text(clone, "", body) == tag_text(taxonomy, "", body)
    assert "grain_deal" not in topics(tag_text(clone, "", body))


# How reporters word each seeded topic beyond its set phrases, one case per kind of wording: word
# order and number ("prisoner of war exchange"), the captor named ("from Russian captivity"), a
# count per side, verbs of the swap and the return, the deal told by what it allows, the ports it
# serves, control of Crimea, the plain referendum word beside the occupier, and inflected forms
# (French "échangent", Turkish accusative "Kırım'ı", Nynorsk "folkerøysting", "fangar").
@pytest.mark.parametrize(
    ("topic", "headline", "body"),
    [
        (
            "detainees",
            "",
            "Russia and Ukraine carried out their first prisoner of war exchange since the summer, both defence "
            "ministries said on Thursday.",
        ),
        (
            "detainees",
            "",
            "Kyiv said 95 soldiers had come home from Russian captivity, among them defenders of Azovstal.",
        ),
        (
            "detainees",
            "",
            "Moscow and Kyiv swapped 84 captive soldiers on Tuesday, mediated by the United Arab Emirates.",
        ),
        (
            "detainees",
            "",
            "Russia and Ukraine returned 150 soldiers each on Sunday; the servicemen were returned through Belarus.",
        ),
        (
            "detainees",
            "La Russie et l'Ukraine échangent des prisonniers",
            "Le ministère russe de la Défense a annoncé le retour de 90 soldats, après une médiation des Émirats.",
        ),
        ("detainees", "", "Les soldats libérés ont été rapatriés en Ukraine samedi, selon Kiev."),
        ("detainees", "", "Ukraina og Russland har utveksla fangar, melder Kyiv."),
        (
            "grain_deal",
            "",
            "Putin said the deal that allowed Ukraine to ship grain through the war zone would not be revived "
            "until the West eased its sanctions.",
        ),
        (
            "grain_deal",
            "",
            "L'accord visait à reprendre les exportations de céréales depuis les ports ukrainiens, selon l'ONU.",
        ),
        (
            "grain_deal",
            "",
            "Russische Drohnen trafen in der Nacht ukrainische Häfen an der Donau, über die Kiew sein Getreide "
            "verschifft.",
        ),
        (
            "annexation",
            "",
            "Kyiv rejected any plan that would accept Russian control over Crimea as the price of a ceasefire.",
        ),
        (
            "annexation",
            "",
            "Vor zehn Jahren stimmte die Krim in einem Referendum über den Beitritt zu Russland ab; der Westen "
            "erkennt es nicht an.",
        ),
        ("annexation", "", "Unter russischer Besatzung wurde in Cherson eine Volksabstimmung abgehalten."),
        ("annexation", "", "Paris ne reconnaîtra jamais l'annexion par la Russie des régions ukrainiennes."),
        ("annexation", "", "Dışişleri Bakanlığı, Rusya'nın Kırım'ı ilhakını tanımadığını yineledi."),
        ("annexation", "", "Ukraina meiner at folkerøystinga på den annekterte Krim-halvøya var ulovleg."),
    ],
)
def test_general_wording_of_each_topic_tags(taxonomy, topic, headline, body):
    for tagger in (taxonomy, _python(taxonomy)):
        assert topics(tag_text(tagger, headline, body)) & SEEDED == {topic}
