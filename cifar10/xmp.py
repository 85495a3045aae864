"""XMP sidecars: the predicted class as a keyword other photo programs read, next to the image, never in it.

``photo.jpg`` gets ``photo.jpg.xmp`` (the digiKam / darktable naming) holding:

* ``dc:subject`` (an ``rdf:Bag``, as the XMP specification defines it): the label as a keyword, which
  digiKam, darktable, Lightroom, Bridge and exiftool all read;
* ``digiKam:TagsList`` (an ``rdf:Seq``): the label, so digiKam shows it as a tag;
* ``cifar10:Label``, ``cifar10:Confidence``, ``cifar10:Model`` (namespace :data:`NS_CIFAR10`): what this
  program wrote, with the confidence.

An existing sidecar is merged, not replaced: every other property, tag and namespace stays as it was;
the keyword written by an earlier run (recorded in ``cifar10:Label``) is replaced by the new label, a
keyword the user added is never removed. The sidecar is written to a temporary file, fsynced, read back and
renamed over the old one, so a crash never leaves half a sidecar. The image file itself is never opened for
writing. ``cifar10 classify --xmp`` journals every sidecar and keeps its previous bytes before writing it, so
``cifar10 classify --xmp-undo FOLDER`` puts them back (:mod:`cifar10.xmp_journal`).

Why the standard library (``xml.etree.ElementTree``) and not a metadata library: measured on
2026-11-29 with the maintained candidates:

* ``pyexiv2`` 2.16 (exiv2) merges correctly but rewrites ``dc:subject`` as an ``rdf:Seq`` (an ordered
  list; the specification says ``rdf:Bag``), also when the existing sidecar had a Bag, and turns a
  single keyword into a plain text attribute; it also adds a ~10 MB native library to the app and bundle.
* ``python-xmp-toolkit`` needs the exempi C library from the operating system, which pip cannot install
  (no Windows build), so the desktop bundle could not ship it.

An XMP sidecar is a small RDF/XML file; ElementTree keeps every element and attribute of an existing
one. What it drops are XML comments (sidecars written by these programs have none); the ``xpacket``
wrapper is written back. Python's expat refuses entity-expansion bombs (expat >= 2.4).
"""

from __future__ import annotations

import io
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from cifar10.folder_journal import install_verified, shown

NS_X = "adobe:ns:meta/"
NS_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
NS_DC = "http://purl.org/dc/elements/1.1/"
NS_DIGIKAM = "http://www.digikam.org/ns/1.0/"
NS_CIFAR10 = "https://cifar10-studio.invalid/ns/1.0/"  # a stable identifier, not a web page
KNOWN_PREFIXES = {"x": NS_X, "rdf": NS_RDF, "dc": NS_DC, "digiKam": NS_DIGIKAM, "cifar10": NS_CIFAR10,
                  "xmp": "http://ns.adobe.com/xap/1.0/", "lr": "http://ns.adobe.com/lightroom/1.0/",
                  "darktable": "http://darktable.sf.net/", "exif": "http://ns.adobe.com/exif/1.0/",
                  "tiff": "http://ns.adobe.com/tiff/1.0/", "photoshop": "http://ns.adobe.com/photoshop/1.0/",
                  "xmpMM": "http://ns.adobe.com/xap/1.0/mm/"}
XPACKET_BEGIN = '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
XPACKET_END = '\n<?xpacket end="w"?>\n'


class XmpError(ValueError):
    """An existing sidecar could not be read as XMP; it was left untouched."""


def sidecar_path(image_path: str | os.PathLike) -> Path:
    """``photo.jpg`` -> ``photo.jpg.xmp`` (digiKam's and darktable's convention)."""
    image_path = Path(image_path)
    return image_path.with_name(image_path.name + ".xmp")


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _parse(path: Path, data: bytes | None = None) -> tuple[ET.Element, dict[str, str]]:
    """The x:xmpmeta (or bare rdf:RDF) root of an existing sidecar (its bytes ``data``, else read from ``path``),
    and its prefix -> namespace map."""
    prefixes: dict[str, str] = {}
    try:
        events = ET.iterparse(io.BytesIO(data) if data is not None else str(path), events=("start-ns", "end"))
        root = None
        for event, item in events:
            if event == "start-ns":
                prefix, uri = item
                prefixes.setdefault(prefix, uri)
            else:
                root = item
    except ET.ParseError as exc:
        raise XmpError(f"{shown(path)}: not valid XML ({exc}); left untouched") from None
    except OSError as exc:
        raise XmpError(f"{shown(path)}: cannot read ({exc.strerror or exc})") from None
    if root is None or root.tag not in (_q(NS_X, "xmpmeta"), _q(NS_RDF, "RDF")):
        raise XmpError(f"{shown(path)}: not an XMP sidecar (its root element is "
                       f"{root.tag if root is not None else 'none'}); left untouched")
    return root, prefixes


def _new_root() -> ET.Element:
    root = ET.Element(_q(NS_X, "xmpmeta"))
    ET.SubElement(root, _q(NS_RDF, "RDF"))
    return root


def _description(root: ET.Element) -> ET.Element:
    """The rdf:Description to write into: the one that already has dc:subject, else the first, else a new one."""
    rdf = root if root.tag == _q(NS_RDF, "RDF") else root.find(_q(NS_RDF, "RDF"))
    if rdf is None:
        rdf = ET.SubElement(root, _q(NS_RDF, "RDF"))
    descriptions = rdf.findall(_q(NS_RDF, "Description"))
    for description in descriptions:
        if description.find(_q(NS_DC, "subject")) is not None:
            return description
    if descriptions:
        return descriptions[0]
    return ET.SubElement(rdf, _q(NS_RDF, "Description"), {_q(NS_RDF, "about"): ""})


def _array_items(description: ET.Element, ns: str, name: str, kind: str) -> tuple[ET.Element, list[str]]:
    """The rdf:Bag/Seq container of property ``ns:name`` (created as ``kind`` if missing) and its items.

    A property written as a plain attribute or text (one keyword) is converted to the array form.
    """
    prop = description.find(_q(ns, name))
    values: list[str] = []
    attribute = description.attrib.pop(_q(ns, name), None)
    if attribute:
        values.append(attribute)
    if prop is None:
        prop = ET.SubElement(description, _q(ns, name))
    container = next((c for c in prop if c.tag in (_q(NS_RDF, "Bag"), _q(NS_RDF, "Seq"), _q(NS_RDF, "Alt"))), None)
    if container is None:
        if prop.text and prop.text.strip():
            values.append(prop.text.strip())
        prop.text = None
        container = ET.SubElement(prop, _q(NS_RDF, kind))
    values.extend((li.text or "") for li in container.findall(_q(NS_RDF, "li")))
    for li in list(container):
        container.remove(li)
    return container, values


def _set_array(description: ET.Element, ns: str, name: str, kind: str, *, add: str, remove: str | None) -> None:
    container, values = _array_items(description, ns, name, kind)
    if remove and remove != add:
        values = [v for v in values if v != remove]
    if add not in values:
        values.append(add)
    for value in values:
        ET.SubElement(container, _q(NS_RDF, "li")).text = value


def _set_simple(description: ET.Element, ns: str, name: str, value: str) -> None:
    element = description.find(_q(ns, name))
    if element is not None:
        element.text = value
    else:
        description.set(_q(ns, name), value)


def _get_simple(description: ET.Element, ns: str, name: str) -> str | None:
    element = description.find(_q(ns, name))
    if element is not None:
        return element.text
    return description.get(_q(ns, name))


def merged_sidecar(path: str | os.PathLike, old: bytes | None, label: str, confidence: float, model: str) -> bytes:
    """The bytes of sidecar ``path`` with ``label`` as a keyword: ``old`` (its current bytes) merged, or a new one
    (``old`` None). Raises :class:`XmpError` when ``old`` is not XMP. Touches no file."""
    path = Path(path)
    prefixes: dict[str, str] = {}
    if old is not None:
        root, prefixes = _parse(path, old)
    else:
        root = _new_root()
    description = _description(root)
    previous = _get_simple(description, NS_CIFAR10, "Label")
    _set_array(description, NS_DC, "subject", "Bag", add=label, remove=previous)
    _set_array(description, NS_DIGIKAM, "TagsList", "Seq", add=label, remove=previous)
    _set_simple(description, NS_CIFAR10, "Label", label)
    _set_simple(description, NS_CIFAR10, "Confidence", f"{confidence:.4f}")
    _set_simple(description, NS_CIFAR10, "Model", model)
    return _serialise(root, prefixes)


def write_sidecar(image_path: str | os.PathLike, label: str, confidence: float, model: str) -> Path:
    """Write or merge ``<image>.xmp`` with ``label`` as a keyword, without a journal; returns the sidecar path.
    (``cifar10 classify --xmp`` goes through :mod:`cifar10.xmp_journal`, which journals and backs up first.)

    Raises :class:`XmpError` when an existing sidecar is not XMP (it is then left as it was) and OSError
    when the folder is not writable. The image itself is only checked to exist, never opened.
    """
    image_path = Path(image_path)
    if not image_path.is_file():
        raise XmpError(f"{shown(image_path)}: no such image file")
    path = sidecar_path(image_path)
    old = path.read_bytes() if path.exists() else None
    data = merged_sidecar(path, old, label, confidence, model)
    mode = (path.stat().st_mode & 0o7777) if old is not None else None
    install_verified([data], str(path), replace=True, mode=mode)
    return path


def read_keywords(path: str | os.PathLike) -> dict:
    """``{"subject": [...], "tags_list": [...], "label", "confidence", "model"}`` of a sidecar (tests, tools)."""
    root, _ = _parse(Path(path))
    description = _description(root)

    def items(ns: str, name: str) -> list[str]:
        prop = description.find(_q(ns, name))
        if prop is None:
            attribute = description.get(_q(ns, name))
            return [attribute] if attribute else []
        return [li.text or "" for li in prop.iter(_q(NS_RDF, "li"))]

    confidence = _get_simple(description, NS_CIFAR10, "Confidence")
    return {"subject": items(NS_DC, "subject"), "tags_list": items(NS_DIGIKAM, "TagsList"),
            "label": _get_simple(description, NS_CIFAR10, "Label"),
            "confidence": float(confidence) if confidence else None,
            "model": _get_simple(description, NS_CIFAR10, "Model")}


def _serialise(root: ET.Element, prefixes: dict[str, str]) -> bytes:
    # Keep the sidecar's own prefixes (ElementTree would otherwise write ns0:, ns1:, ...).
    for prefix, uri in {**KNOWN_PREFIXES, **prefixes}.items():
        if prefix and not prefix.startswith("ns") and not prefix.startswith("xml"):
            try:
                ET.register_namespace(prefix, uri)
            except ValueError:
                pass
    ET.indent(root, space=" ")
    body = ET.tostring(root, encoding="unicode")
    return (XPACKET_BEGIN + body + XPACKET_END).encode("utf-8")
