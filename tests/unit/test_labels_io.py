"""Labels in and out: CSV both ways, the paper's YAML in; all or nothing on bad input."""

from __future__ import annotations

import csv

import pytest
from conftest import assert_one_line_error, write_csv

from ghosttui.errors import SessionError
from ghosttui.session.labels_io import export_labels, import_labels, read_label_file
from ghosttui.session.session import Session

CLASSES = ["horizontal", "vertical", "none"]


def labels_of(name):
    with Session.open(name, writable=False) as session:
        return {pos: (lab.cls, lab.source) for pos, lab in session.store.labels().items()}


def read_csv_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# -- reading files --------------------------------------------------------------------------
def test_csv_with_and_without_source(tmp_path):
    path = write_csv(
        tmp_path / "a.csv",
        [(3, 4, "vertical", "grid"), (0, 15, "none", ""), (23, 0, "horizontal", "holdout")],
        ["rx", "ry", "label", "source"],
    )
    assert read_label_file(path, CLASSES) == [
        (3, 4, "vertical", "grid"),
        (0, 15, "none", "import"),  # empty source: import
        (23, 0, "horizontal", "holdout"),
    ]
    plain = write_csv(tmp_path / "b.csv", [(1, 2, "none")], ["rx", "ry", "label"])
    assert read_label_file(plain, CLASSES) == [(1, 2, "none", "import")]


def test_csv_header_is_case_and_space_insensitive_and_column_order_free(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text(" Label , RY,Rx\n vertical , 5 , 6 \n", encoding="utf-8")
    assert read_label_file(path, CLASSES) == [(6, 5, "vertical", "import")]


def test_paper_yaml(tmp_path):
    path = tmp_path / "labels.yaml"
    path.write_text(
        "labels:\n"
        '  - {file: "98_144_boxsize5.png", label: horizontal}\n'
        '  - {file: "some/dir/7_3.png", label: vertical}\n'
        '  - {file: "sample_12_3.png", label: na}\n'
        "  - file: 0_1_extra_99.png\n"
        "    label: none\n",
        encoding="utf-8",
    )
    assert read_label_file(path, CLASSES) == [
        (98, 144, "horizontal", "import"),
        (7, 3, "vertical", "import"),
        (12, 3, "none", "import"),  # the first two integers; na means none
        (0, 1, "none", "import"),
    ]


def test_yml_suffix_is_yaml_too(tmp_path):
    path = tmp_path / "labels.YML"
    path.write_text('labels: [{file: "2_5.png", label: na}]\n', encoding="utf-8")
    assert read_label_file(path, CLASSES) == [(2, 5, "none", "import")]


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("missing.csv", "rx,label\n1,none\n", "columns rx, ry, label"),
        ("empty.csv", "", "columns rx, ry, label"),
        ("float.csv", "rx,ry,label\n1,2,none\n1.5,2,none\n", "line 3: rx and ry must be integers"),
        ("word.csv", "rx,ry,label\nx,2,none\n", "line 2"),
        ("blank.csv", "rx,ry,label\n,2,none\n", "line 2"),
        ("class.csv", "rx,ry,label\n1,2,none\n1,3,diagonal\n", "line 3: unknown class 'diagonal'"),
        ("short.csv", "rx,ry,label\n1,2\n", "unknown class ''"),
        ("source.csv", "rx,ry,label,source\n1,2,none,psychic\n", "unknown source 'psychic'"),
        ("binary.csv", None, "cannot read CSV"),
        ("nolist.yaml", "labels: 3\n", "no 'labels:' list"),
        ("other.yaml", "things: []\n", "no 'labels:' list"),
        ("scalar.yaml", "just text\n", "no 'labels:' list"),
        ("broken.yaml", "labels: [unclosed\n", "cannot read YAML"),
        ("entry.yaml", "labels:\n  - {file: 1_2.png}\n", "entry 1: needs 'file' and 'label'"),
        ("xy.yaml", 'labels: [{file: "a_1.png", label: na}]\n', "has no X_Y position"),
        ("cls.yaml", 'labels: [{file: "1_1.png", label: diagonal}]\n', "unknown class"),
    ],
)
def test_bad_label_files(tmp_path, name, text, fragment):
    path = tmp_path / name
    if text is None:
        path.write_bytes(b"\xff\xfe\x00rx,ry\x00\x81\x82")
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(SessionError, match=fragment.replace("(", r"\(")) as info:
        read_label_file(path, CLASSES)
    assert "\n" not in str(info.value)
    assert name in str(info.value)  # the file is named


def test_missing_label_file(tmp_path):
    with pytest.raises(SessionError, match="no such label file"):
        read_label_file(tmp_path / "absent.csv", CLASSES)


# -- import and export on a session ---------------------------------------------------------------
def test_import_then_export_round_trips_into_another_session(run_cli, make_session, tmp_path):
    make_session("a").close()
    make_session("b").close()
    rows = [
        (r, (r * 7) % 16, CLASSES[r % 3], ["grid", "manual", "holdout"][r % 3]) for r in range(24)
    ]
    source_csv = write_csv(tmp_path / "in.csv", rows, ["rx", "ry", "label", "source"])
    result = run_cli("labels", "import", "a", source_csv)
    assert result.code == 0, result.err
    assert "imported 24 labels" in result.out
    exported = tmp_path / "out.csv"
    result = run_cli("labels", "export", "a", exported)
    assert result.code == 0, result.err
    assert "wrote 24 labels" in result.out
    written = read_csv_rows(exported)
    assert list(written[0]) == ["rx", "ry", "label", "source", "round"]
    assert {(int(r["rx"]), int(r["ry"]), r["label"], r["source"]) for r in written} == set(rows)

    assert run_cli("labels", "import", "b", exported).code == 0
    assert labels_of("b") == labels_of("a")
    assert labels_of("a") == {(rx, ry): (cls, src) for rx, ry, cls, src in rows}


def test_export_writes_the_current_labels_after_relabel_and_undo(make_session, tmp_path):
    session = make_session("s")
    store = session.store
    store.label(1, 1, "vertical", "grid")
    store.label(1, 1, "none", "manual")  # relabel
    store.label(2, 2, "horizontal", "grid")
    store.undo()  # takes back (2, 2)
    path = tmp_path / "now.csv"
    assert export_labels(store, path) == 1
    assert [(r["rx"], r["ry"], r["label"], r["source"]) for r in read_csv_rows(path)] == [
        ("1", "1", "none", "manual")
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["now.csv"]  # no temporary file left


def test_import_paper_yaml_into_a_session(run_cli, make_session, tmp_path):
    make_session("s").close()
    path = tmp_path / "paper.yaml"
    path.write_text(
        "labels:\n"
        '  - {file: "3_14_boxsize5.png", label: horizontal}\n'
        '  - {file: "sample_12_3.png", label: vertical}\n'
        '  - {file: "20_0.png", label: na}\n',
        encoding="utf-8",
    )
    result = run_cli("labels", "import", "s", path)
    assert result.code == 0, result.err
    assert labels_of("s") == {
        (3, 14): ("horizontal", "import"),
        (12, 3): ("vertical", "import"),
        (20, 0): ("none", "import"),
    }


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("outside.csv", "rx,ry,label\n1,1,none\n24,0,none\n", "(24, 0) is outside the 24x16 scan"),
        ("negative.csv", "rx,ry,label\n1,1,none\n-1,0,none\n", "outside"),
        ("class.csv", "rx,ry,label\n1,1,none\n2,2,sideways\n", "unknown class 'sideways'"),
        ("columns.csv", "x,y,label\n1,1,none\n", "columns rx, ry, label"),
        ("int.csv", "rx,ry,label\n1,1,none\n2,two,none\n", "must be integers"),
        (
            "outside.yaml",
            'labels: [{file: "1_1.png", label: na}, {file: "98_144_b5.png", label: na}]\n',
            "outside",
        ),
        ("nolabels.yaml", "files: []\n", "no 'labels:' list"),
    ],
)
def test_bad_imports_are_one_line_errors_and_import_nothing(
    run_cli, make_session, tmp_path, name, text, fragment
):
    session = make_session("s")
    session.store.label(5, 5, "vertical", "manual")
    session.close()
    before = labels_of("s")
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    assert_one_line_error(run_cli("labels", "import", "s", path), fragment)
    assert labels_of("s") == before
    with Session.open("s", writable=False) as session:
        assert len(session.store.events()) == 1


def test_import_labels_checks_every_row_before_writing(make_session, tmp_path):
    session = make_session("s")
    rows = [(i, i, "none", "import") for i in range(16)] + [(99, 0, "none", "import")]
    path = write_csv(tmp_path / "x.csv", rows, ["rx", "ry", "label", "source"])
    with pytest.raises(SessionError, match="outside"):
        import_labels(session.store, path)
    assert session.store.events() == []


def test_export_of_a_missing_folder_is_a_one_line_error(run_cli, make_session, tmp_path):
    make_session("s").close()
    assert_one_line_error(
        run_cli("labels", "export", "s", tmp_path / "no" / "such" / "dir.csv"),
        "cannot write: folder does not exist",
    )
