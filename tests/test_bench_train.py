"""The training benchmark runs end to end at toy sizes and appends one dated table (no speed asserted)."""

import re

import pytest

from repalign.bench import main
from repalign.bench.train import options


def test_train_benchmark_appends_a_table_with_every_case(tmp_path, capsys):
    record = tmp_path / "performance.md"
    record.write_text("# Performance\n")
    main(["train", "--device", "cpu", "--cases", "vgg16,stack", "--vgg-width", "2", "--batch", "8", "--steps", "2",
          "--warmup", "1", "--workers", "0", "--stack", "2", "--stack-batch", "8",
          "--simple-cnn", "n_conv=1,filters=2,units=8", "--record", str(record)])
    text = record.read_text()
    assert text.startswith("# Performance\n") and "### Training throughput, 20" in text and "CPU" in text
    rows = [line for line in text.splitlines() if line.startswith("| vgg16") or line.startswith("| 2 × simple_cnn")]
    assert len(rows) == 2
    for row in rows:
        assert float(re.search(r"\*\*([0-9.]+)x\*\*", row).group(1)) > 0


def test_options_parse_build_keywords():
    assert options("n_conv=2,units=128,pool=true,init_scale=0.5") == {"n_conv": 2, "units": 128, "pool": True,
                                                                     "init_scale": 0.5}
    with pytest.raises(Exception, match="key=value"):
        options("n_conv")
