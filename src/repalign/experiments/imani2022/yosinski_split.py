"""The ImageNet Artificial / Natural split of Yosinski et al. (2014), used by imani2022 §7.3.

Yosinski et al. split the 1,000 ILSVRC-2012 classes into 551 man-made and 449 natural
classes. Their published split (files ``ilsvrc12/data/half_man_idx.txt`` and
``half_nat_idx.txt`` of github.com/yosinski/convnet_transfer, commit 286bef4) lists class
indices in the standard ILSVRC-2012 order, i.e. the wnids sorted (the order of an
ImageNet ``train/<wnid>/`` ImageFolder). The man-made indices are the ranges below;
every other index is natural. ``derive_split`` turns them into wnid lists, which ship
as ``repalign/data/imagenet_split/{artificial,natural}.txt``.

The split is *not* a single WordNet test: the hyponyms of artifact.n.01 (n00021939) are
522 classes, all of them man-made in the published split; the other 29 man-made
classes are prepared foods and drinks, street sign, traffic light, menu, plate, bubble
and toilet tissue; the natural half holds the 410 hyponyms of organism.n.01 and 39
others (fruit, vegetables, hay, geological formations). ``wordnet_report`` recomputes
these counts from a WordNet 3.0 ``data.noun`` file (see the data folder's README).

Run ``python -m repalign.experiments.imani2022.yosinski_split --wnids FILE [--wordnet
data.noun] [--out DIR]`` to rebuild the lists from a list of the 1,000 wnids.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

MAN_MADE_RANGES = ((398, 935), (959, 969), (971, 971), (999, 999))  # inclusive index ranges
N_CLASSES = 1000
HALVES = ("artificial", "natural")
ARTIFACT, ORGANISM = "n00021939", "n00004475"


def man_made_indices() -> list[int]:
    return [i for lo, hi in MAN_MADE_RANGES for i in range(lo, hi + 1)]


def derive_split(wnids: list[str]) -> dict[str, list[str]]:
    """``{"artificial": [...], "natural": [...]}`` from the 1,000 ILSVRC-2012 wnids (any order)."""
    ordered = sorted(set(wnids))
    if len(ordered) != N_CLASSES:
        raise ValueError(f"need the {N_CLASSES} distinct ILSVRC-2012 wnids, got {len(ordered)}")
    man = set(man_made_indices())
    return {"artificial": [w for i, w in enumerate(ordered) if i in man],
            "natural": [w for i, w in enumerate(ordered) if i not in man]}


def load_split() -> dict[str, list[str]]:
    """The shipped wnid lists of both halves."""
    folder = resources.files("repalign.data") / "imagenet_split"
    return {half: (folder / f"{half}.txt").read_text().split() for half in HALVES}


def wordnet_hypernyms(data_noun: Path) -> dict[str, list[str]]:
    """``wnid -> hypernym wnids`` (``@`` and instance ``@i`` pointers) from WordNet 3.0's ``data.noun``."""
    parents = {}
    for line in Path(data_noun).read_text(encoding="latin-1").splitlines():
        if not line or line.startswith(" "):
            continue  # the licence header
        f = line.split(" ")
        i = 4 + 2 * int(f[3], 16)
        pointers = f[i + 1:i + 1 + 4 * int(f[i])]
        parents["n" + f[0]] = ["n" + pointers[k + 1] for k in range(0, len(pointers), 4)
                               if pointers[k] in ("@", "@i") and pointers[k + 2] == "n"]
    return parents


def ancestors(wnid: str, parents: dict[str, list[str]]) -> set[str]:
    seen, todo = set(), [wnid]
    while todo:
        for p in parents.get(todo.pop(), []):
            if p not in seen:
                seen.add(p)
                todo.append(p)
    return seen


def wordnet_report(split: dict[str, list[str]], parents: dict[str, list[str]]) -> dict[str, int]:
    """How the halves sit under artifact.n.01 and organism.n.01."""
    report = {}
    for half, wnids in split.items():
        above = [ancestors(w, parents) for w in wnids]
        report[f"{half}.artifact"] = sum(ARTIFACT in a for a in above)
        report[f"{half}.organism"] = sum(ORGANISM in a for a in above)
        report[f"{half}.neither"] = sum(ARTIFACT not in a and ORGANISM not in a for a in above)
    return report


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wnids", required=True, type=Path, help="the 1,000 ILSVRC-2012 wnids, one a line")
    parser.add_argument("--wordnet", type=Path, help="WordNet 3.0 data.noun, to print the WordNet report")
    parser.add_argument("--out", type=Path, help="write artificial.txt and natural.txt here")
    args = parser.parse_args(argv)
    split = derive_split(args.wnids.read_text().split())
    for half, wnids in split.items():
        print(f"{half}: {len(wnids)} classes")
        if args.out:
            (args.out / f"{half}.txt").write_text("\n".join(wnids) + "\n")
    if args.wordnet:
        for key, count in wordnet_report(split, wordnet_hypernyms(args.wordnet)).items():
            print(f"{key}: {count}")


if __name__ == "__main__":
    main()
