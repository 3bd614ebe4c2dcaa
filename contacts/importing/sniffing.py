"""What a file is, from its first bytes: a CSV text, an Excel workbook, or
something else that deserves a message saying what it is.

People upload a screenshot, a PDF export or a spreadsheet in another format
more often than one would think; "not UTF-8" or "bad column count" would not
tell them what went wrong, "This is a PNG image, not a CSV file" does.
"""

import zipfile

XLSX = "XLSX"
CSV = "CSV"
HEAD_BYTES = 64 * 1024

_ASK = "Upload a CSV file or an Excel workbook (.xlsx)."
# (magic prefix, what the file is); checked in order, first match wins.
_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF-", "a PDF document"),
    (b"{\\rtf", "a rich-text (RTF) document"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"BZh", "a bzip2-compressed file"),
    (b"\xfd7zXZ\x00", "an xz-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!\x1a\x07", "a RAR archive"),
    (b"SQLite format 3\x00", "an SQLite database"),
    (b"\x7fELF", "a program (ELF executable)"),
    (b"MZ", "a Windows program"),
]
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
_ADVICE = {
    "a gzip-compressed file": "Unpack it first, then upload the CSV file inside.",
    "a bzip2-compressed file": "Unpack it first, then upload the CSV file inside.",
    "an xz-compressed file": "Unpack it first, then upload the CSV file inside.",
    "a 7-Zip archive": "Unpack it first, then upload the CSV file inside.",
    "a RAR archive": "Unpack it first, then upload the CSV file inside.",
}


class NotATableError(ValueError):
    """The file is not a CSV file or an .xlsx workbook; the message says what it is."""


def file_format(path: str) -> str:
    """CSV or XLSX; raises NotATableError for anything else recognisable."""
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
    if head.startswith(_ZIP):
        return _zip_format(path)
    if head.startswith(_OLE2):
        raise NotATableError(
            "This is an old-format Excel workbook (.xls) or another Office "
            "97-2003 file, not a CSV file. Open it in Excel and save it as an "
            "Excel workbook (.xlsx) or as 'CSV UTF-8', then upload that."
        )
    for magic, what in _MAGIC:
        if head.startswith(magic) and not _is_text_anyway(head, magic):
            raise NotATableError(
                f"This is {what}, not a CSV file. {_ADVICE.get(what, _ASK)}"
            )
    start = head.lstrip()[:200].lower()
    if start.startswith((b"<!doctype html", b"<html", b"\xef\xbb\xbf<!doctype html")):
        raise NotATableError(
            "This is a web page (HTML), not a CSV file: the link it came from "
            "probably showed a page instead of downloading the file. "
            "Download the file itself (e.g. File > Download > CSV) and upload that."
        )
    return CSV


def _is_text_anyway(head: bytes, magic: bytes) -> bool:
    """Short text prefixes ("MZ", "BZh") can begin a real CSV header."""
    if magic == b"MZ":
        return b"\x00" not in head[:512]
    if magic == b"BZh":
        return head[4:10] != b"1AY&SY"
    return False


def _zip_format(path: str) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            mimetype = archive.read("mimetype")[:100] if "mimetype" in names else b""
    except (zipfile.BadZipFile, OSError):
        raise NotATableError(
            f"This is a damaged ZIP archive, not a CSV file. {_ASK}"
        ) from None
    if "xl/workbook.xml" in names:
        return XLSX
    if any(n.startswith("Index/") for n in names) or "Index.zip" in names:
        what = (
            "an Apple Numbers spreadsheet, not a CSV file. In Numbers, choose "
            "File > Export To > Excel (or CSV) and upload that."
        )
    elif b"opendocument.spreadsheet" in mimetype:
        what = (
            "an OpenDocument spreadsheet (.ods), not a CSV file. Save it as an "
            "Excel workbook (.xlsx) or as CSV (UTF-8) and upload that."
        )
    elif "word/document.xml" in names:
        what = f"a Word document, not a CSV file. {_ASK}"
    elif any(n.startswith("ppt/") for n in names):
        what = f"a PowerPoint presentation, not a CSV file. {_ASK}"
    else:
        what = (
            "a ZIP archive, not a CSV file. Unpack it and upload the CSV or "
            ".xlsx file inside."
        )
    raise NotATableError(f"This is {what}")
