"""XMP sidecars from `cifar10 classify --xmp`: written next to the image, merged, the image untouched."""

import hashlib

import pytest

from cifar10_cli.main import main
from cifar10.xmp import XmpError, read_keywords, sidecar_path, write_sidecar
from image_files import solid
from onnx_fixtures import BLUE, RED, write_model

DARKTABLE_SIDECAR = """<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:darktable="http://darktable.sf.net/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
   xmp:Rating="4"
   darktable:xmp_version="5">
   <darktable:history>
    <rdf:Seq>
     <rdf:li darktable:operation="exposure" darktable:enabled="1"/>
    </rdf:Seq>
   </darktable:history>
   <dc:subject>
    <rdf:Bag>
     <rdf:li>holiday</rdf:li>
    </rdf:Bag>
   </dc:subject>
   <lr:hierarchicalSubject><rdf:Bag><rdf:li>places|beach</rdf:li></rdf:Bag></lr:hierarchicalSubject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture()
def models(tmp_path, monkeypatch):
    models = tmp_path / "models"
    write_model(models, "colour_a", test_accuracy=0.6)
    write_model(models, "colour_b", test_accuracy=0.5, mapping=(7, 8, 9))
    monkeypatch.setenv("CIFAR10_MODELS_DIR", str(models))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    return models


def test_classify_xmp_writes_sidecars_and_a_second_run_merges(tmp_path, models, capsys):
    photos = tmp_path / "photos"
    red = solid(photos / "red.jpg", RED, quality=95)
    blue = solid(photos / "sub" / "blue.png", BLUE)
    (photos / "broken.jpg").write_bytes(b"nope")
    before = {p: digest(p) for p in (red, blue)}
    mtimes = {p: p.stat().st_mtime_ns for p in (red, blue)}
    assert main(["classify", str(photos), "--model", "colour_a", "--xmp"]) == 1  # broken.jpg: exit 1
    assert sidecar_path(red) == photos / "red.jpg.xmp"
    tags = read_keywords(photos / "red.jpg.xmp")
    assert tags["subject"] == ["airplane"] and tags["tags_list"] == ["airplane"]
    assert tags["label"] == "airplane" and tags["model"] == "colour_a" and 0.5 < tags["confidence"] <= 1
    assert read_keywords(photos / "sub" / "blue.png.xmp")["subject"] == ["bird"]
    assert not (photos / "broken.jpg.xmp").exists()
    assert "XMP sidecars written: 2" in capsys.readouterr().err
    # The user adds a keyword in their photo manager; a second run with another model merges.
    text = (photos / "red.jpg.xmp").read_text()
    (photos / "red.jpg.xmp").write_text(text.replace("<rdf:li>airplane</rdf:li>",
                                                     "<rdf:li>airplane</rdf:li><rdf:li>mine</rdf:li>", 1))
    assert main(["classify", str(photos), "--model", "colour_b", "--xmp"]) == 1
    tags = read_keywords(photos / "red.jpg.xmp")
    assert tags["subject"] == ["mine", "horse"]  # our old label replaced, the user's keyword kept
    assert tags["model"] == "colour_b"
    # The sidecars are not classified as images on the second run, and the images are untouched.
    out = capsys.readouterr()
    assert ".xmp" not in out.out
    assert {p: digest(p) for p in (red, blue)} == before
    assert {p: p.stat().st_mtime_ns for p in (red, blue)} == mtimes


def test_existing_sidecar_keeps_every_other_tag(tmp_path):
    image = solid(tmp_path / "IMG_1.jpg", RED)
    sidecar = tmp_path / "IMG_1.jpg.xmp"
    sidecar.write_text(DARKTABLE_SIDECAR)
    write_sidecar(image, "cat", 0.8123, "fast_cnn")
    text = sidecar.read_text()
    tags = read_keywords(sidecar)
    assert tags["subject"] == ["holiday", "cat"] and tags["confidence"] == pytest.approx(0.8123)
    for kept in ('xmp:Rating="4"', 'darktable:xmp_version="5"', 'darktable:operation="exposure"',
                 "<rdf:li>places|beach</rdf:li>", "<dc:subject>", "<rdf:Bag>"):
        assert kept in text, kept
    assert "ns0:" not in text and text.startswith("<?xpacket begin=")


def test_sidecar_readable_by_exiv2_as_a_bag(tmp_path):
    """An independent XMP implementation (exiv2, through pyexiv2 in the dev install) reads what we write."""
    pyexiv2 = pytest.importorskip("pyexiv2")
    image = solid(tmp_path / "a.png", BLUE)
    (tmp_path / "a.png.xmp").write_text(DARKTABLE_SIDECAR)
    write_sidecar(image, "bird", 0.9, "colour_a")
    metadata = pyexiv2.Image(str(tmp_path / "a.png.xmp"))
    try:
        detail = metadata.read_xmp_detail()
        plain = metadata.read_xmp()
    finally:
        metadata.close()
    assert detail["Xmp.dc.subject"]["typeName"] == "XmpBag"
    assert detail["Xmp.dc.subject"]["value"] == ["holiday", "bird"]
    assert plain["Xmp.xmp.Rating"] == "4" and plain["Xmp.digiKam.TagsList"] == ["bird"]


def test_a_sidecar_that_is_not_xmp_is_left_untouched(tmp_path):
    image = solid(tmp_path / "a.png", RED)
    (tmp_path / "a.png.xmp").write_text("<html>not xmp</html>")
    with pytest.raises(XmpError, match="not an XMP sidecar"):
        write_sidecar(image, "cat", 0.5, "m")
    assert (tmp_path / "a.png.xmp").read_text() == "<html>not xmp</html>"
    (tmp_path / "a.png.xmp").write_text("<x:xmpmeta")
    with pytest.raises(XmpError, match="not valid XML"):
        write_sidecar(image, "cat", 0.5, "m")


def test_xmp_with_an_output_file(tmp_path, models, capsys):
    photos = tmp_path / "photos"
    red = solid(photos / "red.jpg", RED, quality=95)
    before = digest(red)
    out = tmp_path / "results.csv"
    assert main(["classify", str(photos), "--model", "colour_a", "--xmp", "-o", str(out)]) == 0
    assert read_keywords(photos / "red.jpg.xmp")["subject"] == ["airplane"]
    assert "XMP sidecars written: 1" in capsys.readouterr().err and digest(red) == before
