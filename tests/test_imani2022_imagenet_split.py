"""imani2022 §7.3: the shipped Yosinski et al. ImageNet split and its derivation."""

from repalign.experiments.imani2022 import yosinski_split as ys


def test_the_shipped_halves_are_the_published_index_ranges():
    split = ys.load_split()
    assert len(split["artificial"]) == 551 and len(split["natural"]) == 449
    everything = sorted(split["artificial"] + split["natural"])
    assert len(set(everything)) == 1000 and all(w.startswith("n") and len(w) == 9 for w in everything)
    assert ys.derive_split(everything) == split
    assert everything[398] == split["artificial"][0] and everything[397] in split["natural"]


def test_derive_split_needs_all_classes():
    import pytest

    with pytest.raises(ValueError, match="1000"):
        ys.derive_split(["n00000001"])


def test_wordnet_report_follows_hypernym_chains(tmp_path):
    """A three-synset data.noun: n2 -> n1 (artifact) by '@'; n3 -> n2 by instance '@i'."""
    lines = ["  1 This software and database is being provided ...",
             "00021939 03 n 01 artifact 0 000 | a man-made object",
             "00000002 06 n 01 widget 0 001 @ 00021939 n 0000 | a thing",
             "00000003 06 n 01 my_widget 0 002 @i 00000002 n 0000 ~ 00000002 n 0000 | one thing"]
    (tmp_path / "data.noun").write_text("\n".join(lines) + "\n")
    parents = ys.wordnet_hypernyms(tmp_path / "data.noun")
    assert parents["n00000003"] == ["n00000002"] and ys.ancestors("n00000003", parents) == {"n00000002",
                                                                                             ys.ARTIFACT}
    report = ys.wordnet_report({"artificial": ["n00000003"], "natural": ["n00000002"]}, parents)
    assert report["artificial.artifact"] == 1 and report["natural.neither"] == 0
