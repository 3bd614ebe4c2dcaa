"""Benchmark: import an N-row contact CSV through `manage.py import_contacts`.

    .venv/bin/python bench/import_contacts.py [--n 1000000] [--database sqlite|postgres]
        [--reimport] [--baseline]

Generates a realistic CSV (phone numbers from several countries, mostly E.164,
some typed by people; 0.1 % bad rows of several kinds) in a temp directory,
migrates a fresh database, runs the management command as a child process
(DEBUG off, as in production; --debug to compare) and measures its wall time,
CPU time and peak RSS. Then checks that every good row was imported and every
bad row reported with its line number. Progress goes to stderr; the last line
of stdout is the result as JSON. The files and the database are removed
afterwards unless --keep.

--reimport imports the file once (untimed), then times the import of a
changed copy of it: every good row with another name and other attributes,
about 4 % with a consent change (opt-outs, and opt-ins of opted-out people,
which must stay opted out). The JSON keys are the same.

--baseline also imports the same file, in the same run, into a second fresh
database with a plain bulk_create program (bench/_naive_import.py), and
adds its figures and the ratio to the JSON (`baseline_*`, `speedup`).

Target (design §8): >= 20,000 rows/s and peak RSS <= 200 MB for 1,000,000 rows.
"""

import argparse
import csv
import json
import os
import random
import sys
import time
from math import gcd

import _common as common

TARGET_ROWS_PER_S = 20_000
TARGET_PEAK_RSS_MB = 200
HEADERS = [
    "external_id",
    "first_name",
    "last_name",
    "phone",
    "channel",
    "language",
    "time_zone",
    "consent",
    "city",
    "loyalty_tier",
]
BAD_KINDS = (
    "invalid_number",
    "unknown_channel",
    "duplicate",
    "missing_phone",
    "bad_consent",
    "bad_time_zone",
    "column_count",
)

FIRST = [
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Emma",
    "François",
    "Greta",
    "Hiro",
    "Inês",
    "João",
    "Karl",
    "Lena",
    "María",
    "Noah",
    "Olivia",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tomás",
    "Uma",
    "Victor",
    "Wei",
    "Zoë",
]
LAST = [
    "Smith",
    "Müller",
    "Dubois",
    "Silva",
    "García",
    "Jones",
    "Schmidt",
    "Martin",
    "Santos",
    "Brown",
    "O'Neil",
    "Nguyen",
    "Patel",
    "Kowalski",
    "Rossi",
    "Fischer",
    "Bernard",
    "Costa",
    "Taylor",
    "Wagner",
]
TIERS = ["", "bronze", "silver", "gold", "platinum"]
CONSENT = ["yes"] * 12 + ["no"] * 2 + ["opt_in"] * 2 + ["true", "1", "Yes", "OPT-IN"]
CONSENT += [""] * 2
BAD_CONSENT = ["maybe", "perhaps", "2", "later", "n/a"]  # "sí" is a yes now


class Country:
    """Valid numbers of one country: prefix + a subscriber number from a range.

    Row k of the country gets a unique number: the prefix cycles, and the
    subscriber is a permutation of the range (a multiplier coprime with it),
    so insert order into the identity index is scattered as in real files.
    """

    def __init__(self, code, weight, prefixes, digits, low, zones, langs, cities):
        self.code, self.weight, self.prefixes = code, weight, prefixes
        self.low, self.span, self.digits = low, 10**digits - low, digits
        self.mult = next(
            m for m in range(1_000_003, 2_000_000, 2) if gcd(m, self.span) == 1
        )
        self.zones, self.langs, self.cities = zones, langs, cities
        self.count = 0

    def next_number(self) -> tuple[str, str]:
        k = self.count
        self.count += 1
        prefix = self.prefixes[k % len(self.prefixes)]
        sub = self.low + (k // len(self.prefixes) * self.mult) % self.span
        return prefix, f"{sub:0{self.digits}d}"


COUNTRIES = [
    Country(
        "1",
        35,
        [
            str(a)
            for a in (
                201,
                202,
                206,
                212,
                213,
                214,
                303,
                305,
                312,
                404,
                415,
                503,
                512,
                602,
                617,
                646,
                702,
                713,
                718,
                818,
            )
        ],
        7,
        2_000_000,
        [
            "America/New_York",
            "America/Chicago",
            "America/Los_Angeles",
            "America/Denver",
        ],
        ["en", "en-US", "es-US"],
        ["New York", "San Francisco", "Austin", "Washington, D.C."],
    ),
    Country(
        "49",
        15,
        [
            "151",
            "152",
            "157",
            "160",
            "162",
            "170",
            "171",
            "172",
            "173",
            "175",
            "176",
            "177",
            "178",
            "179",
        ],
        8,
        0,
        ["Europe/Berlin"],
        ["de", "de-DE", "en"],
        ["Berlin", "München", "Köln", "Hamburg"],
    ),
    Country(
        "44",
        15,
        [str(p) for p in (*range(740, 760), *range(771, 790))],
        7,
        0,
        ["Europe/London"],
        ["en-GB", "en"],
        ["London", "Leeds", "Glasgow"],
    ),
    Country(
        "33",
        10,
        ["6" + str(d) for d in (0, 1, 2, 4, 5, 6, 7, 8)],
        7,
        0,
        ["Europe/Paris"],
        ["fr", "fr-FR"],
        ["Paris", "Lyon", "Marseille"],
    ),
    Country(
        "55",
        15,
        [f"{d}9" for d in (11, 21, 31, 41, 51, 61, 71, 81)],
        8,
        0,
        ["America/Sao_Paulo"],
        ["pt-BR", "pt"],
        ["São Paulo", "Rio de Janeiro"],
    ),
    Country(
        "34",
        5,
        ["6"],
        8,
        0,
        ["Europe/Madrid"],
        ["es", "es-ES", "ca"],
        ["Madrid", "Barcelona"],
    ),
    Country(
        "91", 5, ["9"], 9, 0, ["Asia/Kolkata"], ["hi", "en-IN"], ["Mumbai", "Bengaluru"]
    ),
]


def human_format(country: Country, prefix: str, sub: str, rng: random.Random) -> str:
    """The number as people type it: spaces, brackets and dashes, which the
    importer strips first; a national prefix or a country code in front (the
    "1-" form) still takes the full phonenumbers parse."""
    if country.code == "1":
        return rng.choice(
            [
                f"({prefix}) {sub[:3]}-{sub[3:]}",
                f"{prefix}-{sub[:3]}-{sub[3:]}",
                f"{prefix}.{sub[:3]}.{sub[3:]}",
                f"+1 {prefix} {sub[:3]} {sub[3:]}",
                f"1-{prefix}-{sub[:3]}-{sub[3:]}",
            ]
        )
    return rng.choice(
        [
            f"+{country.code} {prefix} {sub}",
            f"00{country.code} {prefix} {sub}",
            f"+{country.code}-{prefix}-{sub[:4]}-{sub[4:]}",
        ]
    )


def generate(path: str, n: int, seed: int) -> dict[int, str]:
    """Write the CSV; return {line number: bad kind} for the bad rows."""
    rng = random.Random(seed)
    bad_at = set(rng.sample(range(n), n // 1000)) if n >= 1000 else set()
    weights = [c.weight for c in COUNTRIES]
    recent: list[str] = []  # E.164 numbers of earlier good rows (duplicates)
    bad: dict[int, str] = {}
    with open(path, "w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(HEADERS)
        for i in range(n):
            line = i + 2  # the header is line 1
            country = rng.choices(COUNTRIES, weights)[0]
            prefix, sub = country.next_number()
            e164 = f"+{country.code}{prefix}{sub}"
            phone = (
                e164 if rng.random() < 0.9 else human_format(country, prefix, sub, rng)
            )
            r = rng.random()
            row = [
                f"C{i:08d}" if r > 0.05 else "",
                rng.choice(FIRST),
                rng.choice(LAST),
                phone,
                "SMS" if r < 0.85 else ("WHATSAPP" if r < 0.95 else ""),
                rng.choice(country.langs),
                rng.choice(country.zones),
                rng.choice(CONSENT),
                rng.choice(country.cities),
                rng.choice(TIERS),
            ]
            if i in bad_at:
                kind = BAD_KINDS[len(bad) % len(BAD_KINDS)]
                if kind == "duplicate" and not recent:
                    kind = "missing_phone"
                _spoil(row, kind, recent, rng)
                bad[line] = kind
            elif row[4] != "WHATSAPP":
                if len(recent) < 5000:
                    recent.append(e164)
                else:
                    recent[rng.randrange(5000)] = e164
            out.writerow(row)
            if i and i % 200_000 == 0:
                common.say(f"generated {i:,} rows")
    return bad


def _spoil(row: list[str], kind: str, recent: list[str], rng: random.Random) -> None:
    if kind == "invalid_number":
        row[3] = rng.choice(
            [
                "+999123456789",
                "+1 555 01",
                "12345",
                "phone?",
                "+44 20 7946 0",
                "+33 1 23",
            ]
        )
    elif kind == "unknown_channel":
        row[4] = rng.choice(["PIGEON", "FAX", "e-mail"])
    elif kind == "duplicate":
        row[3], row[4] = rng.choice(recent), "SMS"
    elif kind == "missing_phone":
        row[3] = rng.choice(["", "  "])
    elif kind == "bad_consent":
        row[7] = rng.choice(BAD_CONSENT)
    elif kind == "bad_time_zone":
        row[6] = rng.choice(["Mars/Olympus_Mons", "GMT+25", "Europe/Atlantis"])
    elif kind == "column_count":
        del row[-1]


def changed_copy(path: str, out_path: str, bad: dict[int, str], seed: int) -> None:
    """The file again as a later export of the same people: other names and
    attributes on every good row, a consent change on about 4 % of them."""
    rng = random.Random(seed + 1)
    with (
        open(path, newline="", encoding="utf-8") as source,
        open(out_path, "w", newline="", encoding="utf-8") as handle,
    ):
        out = csv.writer(handle)
        for line, row in enumerate(csv.reader(source), start=1):
            if line > 1 and line not in bad and len(row) == len(HEADERS):
                row[1], row[2] = rng.choice(FIRST), rng.choice(LAST)
                row[8], row[9] = rng.choice(["Lisbon", "Oslo", "Tokyo"]), "gold"
                if rng.random() < 0.04:
                    row[7] = "no" if row[7] in ("yes", "1", "true") else "yes"
            out.writerow(row)


def naive_import(csv_path: str, folder: str, kind: str) -> dict:
    """The plain reference: bench/_naive_import.py into its own fresh
    database, measured like the import."""
    name = f"bench_import_naive_{os.getpid()}"
    url = common.fresh_database(kind, name, folder)
    env_url = os.environ["DATABASE_URL"]
    os.environ["DATABASE_URL"] = url
    try:
        migrate = common.run_measured([common.PYTHON, "manage.py", "migrate", "-v0"])
        if migrate.returncode:
            raise SystemExit(f"baseline migrate failed:\n{migrate.stdout}")
        common.say("baseline: a plain bulk_create import of the same file")
        run = common.run_measured(
            [
                common.PYTHON,
                "bench/_naive_import.py",
                csv_path,
                "bench",
                "Sign-up form: 'Send me offers by text', 2025",
            ]
        )
    finally:
        os.environ["DATABASE_URL"] = env_url
    if kind == "postgres":
        common.remove_run("", kind, name)
    if run.returncode:
        raise SystemExit(f"baseline failed:\n{run.stdout}")
    counts = json.loads(run.stdout.strip().splitlines()[-1])
    return {
        "baseline_rows_imported": counts["rows_ok"],
        "baseline_wall_s": round(run.wall_s, 2),
        "baseline_peak_rss_mb": round(max(run.peak_tree_rss_mb, run.peak_rss_mb), 1),
    }


def reported_lines(report_path: str) -> list[int]:
    with open(report_path, newline="", encoding="utf-8") as handle:
        records = csv.reader(handle)
        next(records)
        return [int(record[0]) for record in records]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="rows in the file")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seed", type=int, default=20250131)
    parser.add_argument(
        "--keep", action="store_true", help="keep the CSV, the report and the database"
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="run the import with DEBUG=true (default: off, as in production)",
    )
    parser.add_argument(
        "--reimport",
        action="store_true",
        help="import once untimed, then time a changed re-import",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="also time a plain bulk_create import of the file",
    )
    args = parser.parse_args()

    folder = common.workdir("bench-import-")
    csv_path = os.path.join(folder, "contacts.csv")
    common.say(f"generating {args.n:,} rows into {csv_path}")
    bad = generate(csv_path, args.n, args.seed)
    size_mb = os.path.getsize(csv_path) / 2**20
    common.say(f"{size_mb:.0f} MB, {len(bad)} bad rows")

    timed_path = csv_path
    if args.reimport:
        timed_path = os.path.join(folder, "contacts-changed.csv")
        changed_copy(csv_path, timed_path, bad, args.seed)
    # Named per run: other benchmarks may share the PostgreSQL server.
    db_name = f"bench_import_{os.getpid()}"
    url = common.fresh_database(args.database, db_name, folder)
    common.say(f"fresh {args.database} database, migrating")
    common.setup_django(url, os.path.join(folder, "media"), debug=args.debug)

    command = [
        common.PYTHON,
        "manage.py",
        "import_contacts",
        "--list",
        "bench",
        "--consent-column",
        "--evidence",
        "Sign-up form: 'Send me offers by text', 2025",
    ]
    if args.reimport:
        common.say("first import (untimed)")
        first = common.run_measured([*command, csv_path])
        if first.returncode:
            common.say(f"first import failed:\n{first.stdout}")
            return 1
    load_before = [round(x, 2) for x in os.getloadavg()]
    common.say(f"importing through `manage.py import_contacts` (load {load_before})")
    server = common.postgres_cpu_reader() if args.database == "postgres" else None
    run = common.run_measured([*command, timed_path], server_cpu=server)
    if run.returncode:
        common.say(f"import failed (exit {run.returncode}):\n{run.stdout}")
        return 1

    from contacts.models import ChannelIdentity, ImportJob, ListMembership

    job = ImportJob.objects.latest("pk")
    identities = ChannelIdentity.objects.count()
    members = ListMembership.objects.count()
    lines = reported_lines(job.report_file)
    expected = args.n - len(bad)
    checks = {
        "job counts every good row as imported": job.rows_ok == expected,
        "a re-import creates no contact": not args.reimport
        or job.contacts_created == 0,
        "one identity per good row in the database": identities == expected,
        "one list membership per good row": members == expected,
        "report has one line per bad row": len(lines) == len(bad),
        "report names exactly the bad lines": set(lines) == set(bad),
    }
    for name, passed in checks.items():
        common.say(f"{'ok  ' if passed else 'FAIL'} {name}")
    if not all(checks.values()):
        missed = sorted(set(bad) - set(lines))[:10]
        extra = sorted(set(lines) - set(bad))[:10]
        common.say(f"bad rows not reported: {missed}; reported good rows: {extra}")
    rate = args.n / run.wall_s
    # Should the command ever start processes of its own, they count too.
    peak_rss = max(run.peak_tree_rss_mb, run.peak_rss_mb)
    result = {
        "rows": args.n,
        "rows_imported": job.rows_ok,
        "rows_per_s": round(rate),
        "bad_rows_generated": len(bad),
        "bad_rows_reported": len(lines),
        "peak_rss_mb": round(peak_rss, 1),
        "peak_rss_largest_process_mb": round(run.peak_rss_mb, 1),
        "peak_pss_mb": round(run.peak_tree_pss_mb, 1),
        "database": args.database,
        "wall_s": round(run.wall_s, 2),
        "cpu_s": round(run.cpu_s, 1),
        **common.cpu_figures(run),
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "debug": args.debug,
        "verified": all(checks.values()),
        "meets_target": rate >= TARGET_ROWS_PER_S and peak_rss <= TARGET_PEAK_RSS_MB,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "reimport": args.reimport,
    }
    if args.reimport:
        result["opt_outs"] = job.opt_outs
        result["kept_opted_out"] = job.kept_opted_out
    if args.baseline:
        # The plain program imports the file fresh: compare with a fresh run.
        base = naive_import(csv_path, folder, args.database)
        if not args.reimport:
            base["speedup"] = round(base["baseline_wall_s"] / run.wall_s, 2)
        result.update(base)
    if not args.keep:
        common.remove_run(folder, args.database, db_name)
    common.emit(result)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
